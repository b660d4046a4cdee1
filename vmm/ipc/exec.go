package ipc

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// An exec (kiln exec, kiln _oci-exec) asks the container's VMM to run a
// process on one connection to its control socket, which stays open as
// long as the process runs:
//
//	exec ──Request{OpExec, Exec}──> VMM
//	exec <──ExecEvent{Started, Pid}── (or {Exited, Status, Error}: it never ran)
//	exec ──Request{OpSignal} / {OpWinsize}──> (any number, any time)
//	exec <──ExecEvent{Exited, Status}──
//
// The VMM ends the process (SIGKILL) if the connection closes before it
// exited, and closes the connection when the container ends.

// ExecEvent is what the VMM tells an exec of its process. Written by the
// VMM (ExecStream.Send), read by the exec (ExecConn.Next).
type ExecEvent struct {
	Started bool `json:"started,omitempty"`
	Pid     int  `json:"pid,omitempty"` // in the guest, with Started
	Exited  bool `json:"exited,omitempty"`
	Status  int  `json:"status,omitempty"` // with Exited: 128+N for signal N
	// Error says why the process did not start (with Exited) or why
	// the VMM refused it; NotRunning: the container is not running.
	Error      string `json:"error,omitempty"`
	NotRunning bool   `json:"not_running,omitempty"`
}

// ExecConn is an exec's connection to the VMM.
type ExecConn struct {
	c  net.Conn
	r  *Reader
	mu sync.Mutex // one writer at a time
}

// Exec asks the VMM listening at path to run e.
func Exec(path string, e *contract.Exec) (*ExecConn, error) {
	c, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("reach the container's VMM: %w", err)
	}
	if err := Write(c, Request{Op: OpExec, Exec: e}); err != nil {
		c.Close()
		return nil, fmt.Errorf("ask the container's VMM: %w", err)
	}
	return &ExecConn{c: c, r: NewReader(c)}, nil
}

// Next reads the VMM's next event. A refusal is an error (ErrNotRunning
// for a container that is not running).
func (e *ExecConn) Next() (ExecEvent, error) {
	var ev ExecEvent
	if err := e.r.Read(&ev); err != nil {
		return ev, err
	}
	if ev.NotRunning {
		return ev, ErrNotRunning
	}
	if ev.Error != "" && !ev.Exited {
		return ev, errors.New(ev.Error)
	}
	return ev, nil
}

// Signal sends sig to the process.
func (e *ExecConn) Signal(sig int) error { return e.send(Request{Op: OpSignal, Signal: sig}) }

// Resize sets the size of the process's terminal.
func (e *ExecConn) Resize(rows, cols uint16) error {
	return e.send(Request{Op: OpWinsize, Rows: rows, Cols: cols})
}

func (e *ExecConn) send(r Request) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.c.SetWriteDeadline(time.Now().Add(callTimeout))
	return Write(e.c, r)
}

// Close ends the connection: the VMM ends a process still running.
func (e *ExecConn) Close() error { return e.c.Close() }

// ExecStream is the VMM's side of an exec's connection.
type ExecStream struct {
	c  net.Conn
	r  *Reader
	mu sync.Mutex
}

// Send writes an event.
func (s *ExecStream) Send(ev ExecEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.SetWriteDeadline(time.Now().Add(callTimeout))
	return Write(s.c, ev)
}

// Next reads the exec's next request (OpSignal, OpWinsize); an error is
// the end of the connection.
func (s *ExecStream) Next() (Request, error) {
	var r Request
	err := s.r.Read(&r)
	return r, err
}

// Close ends the connection.
func (s *ExecStream) Close() error { return s.c.Close() }

// ExecJob is what kiln exec tells the exec process it starts for
// --detach (`kiln _oci-exec`, on its fd 3): the container's VMM socket and
// vsock device, and the process. Written by kiln exec, read by the exec
// process.
type ExecJob struct {
	Control  string         `json:"control"` // the VMM's control socket
	Vsock    string         `json:"vsock"`   // the VM's vsock device (its PATH_port sockets)
	Exec     *contract.Exec `json:"exec"`
	Terminal bool           `json:"terminal,omitempty"` // stdin is a terminal to take sizes from
}

// ExecReport is the exec process's answer to an ExecJob: the process
// started (Pid is the guest's), or Error with the exit Code kiln exec
// gives. Written by the exec process, read by kiln exec.
type ExecReport struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
}
