package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHandler(t *testing.T) {
	at := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	h := newHandler("box", func() time.Time { return at })
	do := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}

	w := do("GET", "/")
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var got hello
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Equal(t, hello{Hello: "kiln", Host: "box", Time: at}, got)

	w = do("GET", "/health")
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"status":"ok"}`, w.Body.String())

	require.Equal(t, http.StatusOK, do("HEAD", "/").Code)
	require.Equal(t, http.StatusNotFound, do("GET", "/nothing").Code)
	require.Equal(t, http.StatusMethodNotAllowed, do("POST", "/").Code)
}

// TestServeEndsOnSIGTERM runs the command, asks it, and it answers; on
// SIGTERM it exits 0.
func TestServeEndsOnSIGTERM(t *testing.T) {
	if os.Getenv("KILN_HTTPD_SERVE") != "" {
		if err := serve(os.Getenv("KILN_HTTPD_SERVE")); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // a free port
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeEndsOnSIGTERM$")
	cmd.Env = append(os.Environ(), "KILN_HTTPD_SERVE="+addr)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	var resp *http.Response
	require.Eventually(t, func() bool {
		var err error
		resp, err = http.Get("http://" + addr + "/health")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit 0 on SIGTERM")
	case <-time.After(10 * time.Second):
		t.Fatal("httpd did not end on SIGTERM")
	}
	_, err = http.Get("http://" + addr + "/")
	require.Error(t, err, "nothing listens after the exit")
}
