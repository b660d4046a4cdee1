package main

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGuestVsock exchanges messages both ways over virtio-vsock: a guest
// program connects to a host program listening at PATH_5000, and a host
// program connects through PATH to a guest program listening on port 6000.
func TestGuestVsock(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	path := filepath.Join(t.TempDir(), "v.sock")

	// The host programs: the one the guest connects to, and the one
	// that connects to the guest once it listens.
	fromGuest, fromGuestListener := vsockHostPeers(t, path)

	// The guest listener, a background shell, answers the host and prints
	// what the host sends; meanwhile the guest connects out to port 5000.
	script := "sh -c 'echo pong from the guest | vsockcat listen 6000' & echo ping from the guest | vsockcat connect 5000; wait"
	r := kiln(t, "", "run", "--kernel", k, "--initrd", i, "--vsock", "3,"+path, "--", "sh", "-c", script)
	logConsole(t, r)
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "pong from the host", "the guest read the host's reply")
	require.Contains(t, r.stdout, "ping from the host", "the guest listener read the host's message")
	// The host programs run in goroutines: give them a moment to finish
	// reading what the guest sent before it ended.
	select {
	case got := <-fromGuest:
		require.Equal(t, "ping from the guest\n", got)
	case <-time.After(10 * time.Second):
		t.Fatal("the host program never heard from the guest")
	}
	select {
	case got := <-fromGuestListener:
		require.Equal(t, "pong from the guest\n", got)
	case <-time.After(10 * time.Second):
		t.Fatal("the host never reached the guest's listener")
	}
}

// hostConnect connects to the guest's port through the hybrid vsock
// socket: "CONNECT port", "OK hostport", then the stream.
func hostConnect(path string, port int, msg string) (string, bool) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return "", false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "CONNECT %d\n", port)
	br := bufio.NewReader(c)
	ok, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(ok, "OK ") {
		return "", false
	}
	c.Write([]byte(msg))
	c.(*net.UnixConn).CloseWrite()
	reply, _ := br.ReadString('\n')
	return reply, reply != ""
}

// vsockHostPeers starts the host's side of the vsock exchange with a
// guest whose device is at path: a program listening on host port 5000
// that reads a line and answers "pong from the host", and one that keeps
// trying to connect to guest port 6000 with "ping from the host" until
// the guest listens. It returns their channels: the guest's line, and the
// guest listener's reply.
func vsockHostPeers(t *testing.T, path string) (fromGuest, fromGuestListener <-chan string) {
	t.Helper()
	l, err := net.Listen("unix", path+"_5000")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	guest := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		guest <- line
		c.Write([]byte("pong from the host\n"))
	}()
	listener := make(chan string, 1)
	go func() {
		deadline := time.Now().Add(bootDeadline)
		for time.Now().Before(deadline) {
			if reply, ok := hostConnect(path, 6000, "ping from the host\n"); ok {
				listener <- reply
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return guest, listener
}
