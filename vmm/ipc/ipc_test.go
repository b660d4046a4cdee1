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

	"github.com/kiln-vmm/kiln/guest/contract"
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

func TestExecStream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan Request, 8)
	go ServeExec(ln, func(Request) error { return nil }, func(req Request, s *ExecStream) {
		got <- req
		require.NoError(t, s.Send(ExecEvent{Started: true, Pid: 7}))
		for {
			r, err := s.Next()
			if err != nil {
				return
			}
			got <- r
			if r.Op == OpSignal {
				s.Send(ExecEvent{Exited: true, Status: 128 + r.Signal})
			}
		}
	})
	c, err := Exec(path, &contract.Exec{ID: "x", Args: []string{"sh"}, Port: 1100})
	require.NoError(t, err)
	defer c.Close()
	req := <-got
	require.Equal(t, OpExec, req.Op)
	require.Equal(t, "x", req.Exec.ID)
	require.Equal(t, uint32(1100), req.Exec.Port)
	ev, err := c.Next()
	require.NoError(t, err)
	require.Equal(t, ExecEvent{Started: true, Pid: 7}, ev)
	require.NoError(t, c.Resize(24, 80))
	require.Equal(t, Request{Op: OpWinsize, Rows: 24, Cols: 80}, <-got)
	require.NoError(t, c.Signal(15))
	require.Equal(t, Request{Op: OpSignal, Signal: 15}, <-got)
	ev, err = c.Next()
	require.NoError(t, err)
	require.Equal(t, ExecEvent{Exited: true, Status: 143}, ev)
}

func TestExecRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()
	go ServeExec(ln, nil, func(_ Request, s *ExecStream) {
		s.Send(ExecEvent{NotRunning: true, Error: "container not running"})
	})
	c, err := Exec(path, &contract.Exec{ID: "x", Args: []string{"sh"}})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Next()
	require.ErrorIs(t, err, ErrNotRunning)

	// Without an exec handler, OpExec is an unknown request.
	ln2, err := net.Listen("unix", path+"2")
	require.NoError(t, err)
	defer ln2.Close()
	go Serve(ln2, func(r Request) error { return fmt.Errorf("unknown request %q", r.Op) })
	c, err = Exec(path+"2", &contract.Exec{ID: "x", Args: []string{"sh"}})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Next()
	require.ErrorContains(t, err, "unknown request")
}
