package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMessagesAreLines(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, Write(&b, Created{Error: "no kernel"}))
	require.NoError(t, Write(&b, Adopted{}))
	require.Equal(t, "{\"error\":\"no kernel\"}\n{}\n", b.String())
	r := NewReader(&b)
	var c Created
	require.NoError(t, r.Read(&c))
	require.Equal(t, "no kernel", c.Error)
	var a Adopted
	require.NoError(t, r.Read(&a))
	require.ErrorIs(t, r.Read(&a), ErrClosed, "the end of the stream")
}

func TestBadLines(t *testing.T) {
	var c Created
	require.ErrorContains(t, Read(strings.NewReader("not json\n"), &c), "read ipc.Created")
	long := strings.Repeat("x", MaxLine+10) + "\n"
	require.ErrorContains(t, Read(strings.NewReader(long), &c), "more than")
	require.ErrorIs(t, Read(strings.NewReader(`{"error":"cut sh`), &c), ErrClosed, "a line cut short")
}

func TestCallAndServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()
	var got []Request
	go Serve(ln, func(r Request) error {
		got = append(got, r)
		switch {
		case r.Op == OpSignal && r.Signal == 15:
			return fmt.Errorf("kill c1: %w", ErrNotRunning)
		case r.Op == "bogus":
			return errors.New("unknown request")
		}
		return nil
	})
	require.NoError(t, Call(path, Request{Op: OpStart}))
	require.ErrorIs(t, Call(path, Request{Op: OpSignal, Signal: 15, All: true}), ErrNotRunning)
	require.EqualError(t, Call(path, Request{Op: "bogus"}), "unknown request")
	require.Equal(t, []Request{{Op: OpStart}, {Op: OpSignal, Signal: 15, All: true}, {Op: "bogus"}}, got)
	require.ErrorContains(t, Call(filepath.Join(t.TempDir(), "none"), Request{Op: OpStart}), "reach the container's VMM")
}
