package ipc

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Request is what a kiln command asks of a container's VMM on its control
// socket. Written by kiln start, kill, ... (Call), read by the VMM (Serve).
type Request struct {
	Op     Op   `json:"op"`
	Signal int  `json:"signal,omitempty"` // for OpSignal
	All    bool `json:"all,omitempty"`    // for OpSignal: every process of the container
	// Net, for OpStart, is the network an engine set up after create,
	// which the guest's init configures before the process runs.
	Net []contract.Interface `json:"net,omitempty"`
	// Exec is the process to run, for OpExec (exec.go).
	Exec *contract.Exec `json:"exec,omitempty"`
	// Rows and Cols are an exec's terminal size, for OpWinsize.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
	// Dir is where OpCheckpoint writes the VM; LeaveRunning lets the
	// container go on after it.
	Dir          string `json:"dir,omitempty"`
	LeaveRunning bool   `json:"leave_running,omitempty"`
}

// Op names a request.
type Op string

const (
	OpStart  Op = "start"  // let the container's process run (kiln start)
	OpSignal Op = "signal" // send Signal to the container (kiln kill)
	OpPause  Op = "pause"  // stop the VM's vCPUs (kiln pause)
	OpResume Op = "resume" // let them go on (kiln resume)
	// OpExec runs another process in the container; the connection
	// stays open for it (exec.go).
	OpExec Op = "exec"
	// OpWinsize resizes an exec's terminal, on an OpExec connection.
	OpWinsize Op = "winsize"
	// OpCheckpoint saves the running VM to Dir (kiln checkpoint).
	OpCheckpoint Op = "checkpoint"
)

// Reply is the VMM's answer: Error is empty on success. NotRunning says
// the container's process has exited, which kill reports as runc does.
// Written by the VMM, read by the command.
type Reply struct {
	Error      string `json:"error,omitempty"`
	NotRunning bool   `json:"not_running,omitempty"`
}

// ErrNotRunning is a Reply's NotRunning as an error, on both sides.
var ErrNotRunning = errors.New("container not running")

// callTimeout bounds a request: the VMM answers at once (a start or a
// signal only sends a message to the guest; a pause waits for the vCPUs
// to leave the guest, which is a kick and the exit each was handling).
const callTimeout = time.Minute

// checkpointTimeout bounds a checkpoint: the guest holds its output, the
// VM is paused, and its memory written.
const checkpointTimeout = 5 * time.Minute

// timeout is how long a request may take.
func (r Request) timeout() time.Duration {
	if r.Op == OpCheckpoint {
		return checkpointTimeout
	}
	return callTimeout
}

// Call sends req to the VMM listening at path and waits for its reply.
func Call(path string, req Request) error {
	c, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		return fmt.Errorf("reach the container's VMM: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(req.timeout()))
	if err := Write(c, req); err != nil {
		return fmt.Errorf("ask the container's VMM: %w", err)
	}
	var r Reply
	if err := Read(c, &r); err != nil {
		return fmt.Errorf("the container's VMM did not answer: %w", err)
	}
	if r.NotRunning {
		return ErrNotRunning
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}

// Serve answers requests on ln with handle until ln is closed.
func Serve(ln net.Listener, handle func(Request) error) { ServeExec(ln, handle, nil) }

// ServeExec is Serve, but hands an OpExec connection to exec, which has
// it until it returns (without exec, OpExec is refused).
func ServeExec(ln net.Listener, handle func(Request) error, exec func(Request, *ExecStream)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(callTimeout))
			var req Request
			var r Reply
			rd := NewReader(c)
			err := rd.Read(&req)
			switch {
			case err != nil:
				r.Error = "bad request: " + err.Error()
			case req.Op == OpExec && exec != nil:
				c.SetDeadline(time.Time{}) // as long as the exec runs
				exec(req, &ExecStream{c: c, r: rd})
				return
			default:
				c.SetDeadline(time.Now().Add(req.timeout()))
				if err := handle(req); err != nil {
					r.Error = err.Error()
					r.NotRunning = errors.Is(err, ErrNotRunning)
				}
			}
			Write(c, r)
		}()
	}
}
