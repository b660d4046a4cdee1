package oci

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/ipc"
)

// The VMM's part in an exec (kiln exec, exec.go): it passes the exec's
// request to the guest's init on the control connection, the guest's
// reports back to the exec, and the exec's signals and terminal sizes to
// the guest. The exec's stdio never pass through the VMM: the guest
// connects to vsock ports the exec process listens on itself.

// startWait bounds how long an exec waits for a container's process that
// is starting.
const startWait = 2 * time.Minute

// execs are the execs the VMM is relaying, by ID.
type execs struct {
	mu sync.Mutex
	m  map[string]chan contract.Control
}

// add registers id, unless it is taken.
func (e *execs) add(id string) (chan contract.Control, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]chan contract.Control{}
	}
	if _, ok := e.m[id]; ok {
		return nil, false
	}
	ch := make(chan contract.Control, 4)
	e.m[id] = ch
	return ch, true
}

// count is how many execs run.
func (e *execs) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.m)
}

func (e *execs) remove(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, id)
}

// deliver hands a guest's report to its exec; one for an exec that is not
// there, or more than it reads, is dropped (the guest is untrusted).
func (e *execs) deliver(m contract.Control) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch, ok := e.m[m.ID]; ok {
		select {
		case ch <- m:
		default:
		}
	}
}

// exec serves one exec's connection until its process exited or the
// container ended.
func (v *VMM) exec(req ipc.Request, s *ipc.ExecStream) {
	e := req.Exec
	// Right after kiln start the guest is still making the container's
	// process: an exec then waits for it, as it would for runc's.
	for wait := time.Now().Add(startWait); v.proc.Phase() == PhaseStarting && time.Now().Before(wait); {
		select {
		case <-v.ended:
			wait = time.Time{}
		case <-time.After(50 * time.Millisecond):
		}
	}
	switch {
	case e == nil || e.ID == "" || len(e.ID) > contract.MaxExecID || len(e.Args) == 0:
		s.Send(ipc.ExecEvent{Error: "bad exec request: an ID and a command are needed"})
		return
	case v.proc.Phase() != PhaseRunning:
		s.Send(ipc.ExecEvent{NotRunning: true, Error: fmt.Sprintf("container not running (%v)", v.proc.Phase())})
		return
	}
	reports, ok := v.execs.add(e.ID)
	if !ok {
		s.Send(ipc.ExecEvent{Error: fmt.Sprintf("an exec %q runs already", e.ID)})
		return
	}
	defer v.execs.remove(e.ID)
	if err := v.link.Send(contract.Control{Op: contract.ControlExec, Exec: e}); err != nil {
		s.Send(ipc.ExecEvent{Error: err.Error()})
		return
	}
	exited := make(chan struct{})
	defer close(exited)
	go func() {
		for {
			r, err := s.Next()
			if err != nil {
				break
			}
			switch r.Op {
			case ipc.OpSignal:
				v.link.Send(contract.Control{Op: contract.ControlSignal, ID: e.ID, Signal: r.Signal})
			case ipc.OpWinsize:
				v.link.Send(contract.Control{Op: contract.ControlWinsize, ID: e.ID, Rows: r.Rows, Cols: r.Cols})
			}
		}
		// The exec went away: its process goes with it.
		select {
		case <-exited:
		default:
			v.link.Send(contract.Control{Op: contract.ControlSignal, ID: e.ID, Signal: int(unix.SIGKILL)})
		}
	}()
	for {
		select {
		case m := <-reports:
			switch m.Op {
			case contract.ControlExecStarted:
				s.Send(ipc.ExecEvent{Started: true, Pid: m.Pid})
			case contract.ControlExecExited:
				s.Send(ipc.ExecEvent{Exited: true, Status: m.Status, Error: m.Error})
				return
			}
		case <-v.ended:
			return // the container ended: the exec's connection closes
		}
	}
}
