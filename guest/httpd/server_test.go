package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testTime = time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)

// start runs a server on a free local port and returns its address.
func start(t *testing.T) (*server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := newServer(l, "box", func() time.Time { return testTime })
	served := make(chan error, 1)
	go func() { served <- s.serve() }()
	t.Cleanup(func() {
		s.shutdown(time.Second)
		require.NoError(t, <-served)
	})
	return s, l.Addr().String()
}

func TestAnswers(t *testing.T) {
	_, addr := start(t)
	get := func(method, path string) (*http.Response, string) {
		req, err := http.NewRequest(method, "http://"+addr+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}

	resp, body := get("GET", "/")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NotEmpty(t, resp.Header.Get("Date"))
	var h hello
	require.NoError(t, json.Unmarshal([]byte(body), &h))
	require.Equal(t, hello{Hello: "kiln", Host: "box", Time: testTime}, h)

	resp, body = get("GET", "/health?probe=1")
	require.Equal(t, 200, resp.StatusCode)
	require.JSONEq(t, `{"status":"ok"}`, body)

	// /random: fresh bytes each time, and the address asked.
	var r1, r2 random
	resp, body = get("GET", "/random")
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, json.Unmarshal([]byte(body), &r1))
	_, body = get("GET", "/random")
	require.NoError(t, json.Unmarshal([]byte(body), &r2))
	require.Len(t, r1.Random, 32, "16 bytes in hex")
	require.NotEqual(t, r1.Random, r2.Random)
	require.Equal(t, addr, r1.Addr)

	resp, body = get("HEAD", "/")
	require.Equal(t, 200, resp.StatusCode)
	require.Empty(t, body)
	require.Positive(t, resp.ContentLength, "HEAD says how long the body would be")

	resp, _ = get("GET", "/nothing")
	require.Equal(t, 404, resp.StatusCode)
	resp, _ = get("POST", "/")
	require.Equal(t, 405, resp.StatusCode)
	require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
}

// exchange writes raw bytes on a new connection and reads the responses
// until the server closes it or n have come.
func exchange(t *testing.T, addr, raw string, n int) (resps []*http.Response, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	r := bufio.NewReader(c)
	for len(resps) < n {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return resps, true
		}
		io.Copy(io.Discard, resp.Body)
		resps = append(resps, resp)
	}
	// Open still, unless reading ends otherwise than by the deadline.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = r.ReadByte()
	var ne net.Error
	return resps, !(errors.As(err, &ne) && ne.Timeout())
}

func TestConnections(t *testing.T) {
	_, addr := start(t)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c.Close()

	// Two requests in one write: two answers, and the connection stays.
	resps, closed := exchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n", 2)
	require.Len(t, resps, 2)
	require.Equal(t, 200, resps[1].StatusCode)
	require.False(t, closed, "HTTP/1.1 keeps the connection")

	for _, c := range []struct {
		raw    string
		status int
	}{
		{"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
		{"GET / HTTP/1.0\r\n\r\n", 200},
		{"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 200}, // a body httpd does not read
		{"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405},
		{"GET /\r\n\r\n", 400},
		{"GET / HTTP/2\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
		{"GET /" + strings.Repeat("a", maxLine) + " HTTP/1.1\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", maxHeaders+1) + "\r\n", 400},
	} {
		resps, closed := exchange(t, addr, c.raw, 2)
		require.Len(t, resps, 1, "%q", c.raw)
		require.Equal(t, c.status, resps[0].StatusCode, "%q", c.raw)
		require.True(t, closed, "%q: the connection is closed after the answer", c.raw)
	}
}

func TestShutdownClosesIdleConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := newServer(l, "box", time.Now)
	served := make(chan error, 1)
	go func() { served <- s.serve() }()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	io.WriteString(c, "GET /health HTTP/1.1\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body) // the connection is idle now

	begin := time.Now()
	s.shutdown(5 * time.Second)
	require.NoError(t, <-served)
	require.Less(t, time.Since(begin), 2*time.Second, "an idle connection does not hold the shutdown")
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = r.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the idle connection was closed")
}

// TestSIGTERM runs the command itself, which answers, and exits 0 on
// SIGTERM.
func TestSIGTERM(t *testing.T) {
	if addr := os.Getenv("KILN_HTTPD_ADDR"); addr != "" {
		os.Args = []string{"httpd", "-addr", addr}
		main()
		os.Exit(0)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // a free port
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGTERM$")
	cmd.Env = append(os.Environ(), "KILN_HTTPD_ADDR="+addr)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit 0 on SIGTERM")
	case <-time.After(10 * time.Second):
		t.Fatal("httpd did not end on SIGTERM")
	}
}

// FuzzReadRequest: whatever a client sends, reading a request ends in a
// request or an error, without reading a line past maxLine, and a
// request read has a method and a path without spaces or line ends.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /health?x HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\n\n", "GET  HTTP/1.1\r\n\r\n", "\r\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := readRequest(bufio.NewReaderSize(strings.NewReader(string(b)), maxLine))
		if err != nil {
			return
		}
		if req.method == "" || req.path == "" || strings.ContainsAny(req.method+req.path, " \r\n") {
			t.Fatalf("%q read as %+v", b, req)
		}
	})
}
