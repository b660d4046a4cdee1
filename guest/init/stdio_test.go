package main

import (
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// socketPair is a connected stream pair: the guest's end and the host's.
func socketPair(t *testing.T) (guest, host *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	require.NoError(t, err)
	return os.NewFile(uintptr(fds[0]), "guest"), os.NewFile(uintptr(fds[1]), "host")
}

// TestRelayAcrossReconnect: the process's output, copied from its pipe
// to the host, is held while the gate is closed (a checkpoint), and goes
// on over the next connection once the first is reset: the host reads
// every byte, in order, none twice.
func TestRelayAcrossReconnect(t *testing.T) {
	var mu sync.Mutex
	var hosts []*os.File
	dial := func() (*os.File, error) {
		g, h := socketPair(t)
		mu.Lock()
		hosts = append(hosts, h)
		mu.Unlock()
		return g, nil
	}
	s, err := newStream(dial)
	require.NoError(t, err)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	g := newGate()
	c := toHost(r, s, g)

	read := func(h *os.File, want string) {
		t.Helper()
		buf := make([]byte, len(want))
		h.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadFull(h, buf)
		require.NoError(t, err)
		require.Equal(t, want, string(buf))
	}
	w.WriteString("one\n")
	read(hosts[0], "one\n")

	// The checkpoint: the gate closes, what the process writes waits.
	require.True(t, g.close(time.Second))
	w.WriteString("two\n")
	hosts[0].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = hosts[0].Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "nothing passes a closed gate")

	// The pause resets the connection; init connects again, and the
	// output goes on there.
	hosts[0].Close()
	require.NoError(t, s.redial())
	g.open()
	read(hosts[1], "two\n")
	w.WriteString("three\n")
	read(hosts[1], "three\n")

	// The process exits: the copy drains the pipe and ends.
	w.WriteString(strings.Repeat("x", 100000))
	done := make(chan struct{})
	go func() { c.drain(); close(done) }()
	read(hosts[1], strings.Repeat("x", 100000))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the copy did not end after the process's exit")
	}
	w.Close()
}

// TestGateCloseTimesOut: a write the host never takes keeps the gate
// from closing; close gives up after its timeout and leaves it open.
func TestGateCloseTimesOut(t *testing.T) {
	g := newGate()
	g.enter()
	start := time.Now()
	require.False(t, g.close(50*time.Millisecond))
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	g.leave()
	entered := make(chan struct{})
	go func() { g.enter(); close(entered) }()
	select {
	case <-entered:
	case <-time.After(time.Second):
		t.Fatal("the gate stayed closed after a close that timed out")
	}
	g.leave()
}
