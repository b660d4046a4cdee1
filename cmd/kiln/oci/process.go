package oci

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// The container's process and the signals sent to it. The OCI runtime
// specification says that kill sends a signal to the container's process,
// and runc behaves as if that process exists from create on: its init
// waits, a real process, until start lets it exec. In a kiln container the
// process is made in the guest, seconds after start on a slow host (an
// exec there is emulated kernel work), and the VMM hears of it from the
// guest's init (contract.ControlStarted). Process is the one place that
// decides what a signal does at each moment of that life:
//
//	created   kiln start has not come: a signal whose default action ends a
//	          process ends the container, with the status of that death
//	          (128+N), as it ends runc's waiting init; any other signal is
//	          held, and delivered once the process exists
//	starting  start went to the guest, the process does not exist yet:
//	          every signal is held
//	running   the guest reported the process started: held signals went to
//	          it in the order they came, new ones go at once
//	exited    the guest reported its exit, or the VM ended: a signal is
//	          refused with ErrNotRunning
//
// No signal is dropped while the process may still run, whenever it comes.

// Phase is where the container's process is in its life.
type Phase int

const (
	PhaseCreated Phase = iota
	PhaseStarting
	PhaseRunning
	PhaseExited
)

func (p Phase) String() string {
	switch p {
	case PhaseCreated:
		return "created"
	case PhaseStarting:
		return "starting"
	case PhaseRunning:
		return "running"
	case PhaseExited:
		return "exited"
	}
	return fmt.Sprintf("phase %d", int(p))
}

// Signal is a signal for the container: to its process, or with All to
// every process of the container.
type Signal struct {
	Sig unix.Signal
	All bool
}

// Process is the container's process as the VMM knows it. Its two
// callbacks are the only ways a signal leaves it.
type Process struct {
	// Deliver sends a signal to the guest's init, which signals the
	// process (or all of the container's processes) at once.
	Deliver func(Signal) error
	// End ends the container before its process exists, as sig would
	// end a process: the VM stops and the container's status is
	// 128+sig.
	End func(sig unix.Signal)

	mu    sync.Mutex
	phase Phase
	held  []Signal
}

// ErrStarted refuses a second start.
var ErrStarted = errors.New("the container was started already")

// Phase returns where the process is.
func (p *Process) Phase() Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.phase
}

// Held returns the signals held for a process that does not exist yet.
func (p *Process) Held() []Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Signal(nil), p.held...)
}

// Start runs start, which tells the guest to start the process, and
// moves to starting if it succeeds. A container is started once.
func (p *Process) Start(start func() error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.phase {
	case PhaseCreated:
	case PhaseExited:
		return ErrNotRunning
	default:
		return ErrStarted
	}
	if err := start(); err != nil {
		return err
	}
	p.phase = PhaseStarting
	return nil
}

// Started is the guest's word that the process exists: the held signals
// are delivered, in the order they came. It returns the first delivery
// that failed.
func (p *Process) Started() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase != PhaseStarting {
		// A guest that reports a start nobody asked for, or twice, is
		// not believed: nothing changes.
		return fmt.Errorf("the guest reported the process started while it was %v", p.phase)
	}
	p.phase = PhaseRunning
	var first error
	for _, s := range p.held {
		if err := p.Deliver(s); err != nil && first == nil {
			first = err
		}
	}
	p.held = nil
	return first
}

// Exited is the word that the process is gone: the guest reported its
// exit, or the VM ended. Signals still held had no process to reach.
func (p *Process) Exited() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = PhaseExited
	p.held = nil
}

// Send applies the rule of the package comment to one signal.
func (p *Process) Send(s Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.phase {
	case PhaseCreated:
		if Ends(s.Sig) {
			p.phase = PhaseExited
			p.held = nil
			p.End(s.Sig)
			return nil
		}
		p.held = append(p.held, s)
	case PhaseStarting:
		p.held = append(p.held, s)
	case PhaseRunning:
		return p.Deliver(s)
	default:
		return ErrNotRunning
	}
	return nil
}

// Ends reports whether sig's default action ends a process (terminate,
// or terminate with a core dump).
func Ends(sig unix.Signal) bool {
	switch sig {
	case unix.SIGCHLD, unix.SIGCONT, unix.SIGURG, unix.SIGWINCH,
		unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return false
	}
	return true
}
