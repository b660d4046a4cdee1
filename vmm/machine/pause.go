package machine

import (
	"fmt"
	"sync"
	"time"

	"github.com/kiln-vmm/kiln/vmm/cpu"
)

// Pausing a running VM, and letting it go on (Firecracker's Pause and
// Resume; QEMU's stop and cont). Pause asks every vCPU to stop: each
// leaves the guest (kicked: run.go), finishes the exit it was handling,
// saves its registers on its own thread (KVM wants a vCPU's ioctls from
// the thread that runs it) and waits. Then the virtio devices pause:
// their goroutines stop, so that nothing changes guest memory. The VM is
// then still, and SaveSnapshot can write it. Resume starts the devices
// again where they were and lets the vCPUs back into the guest: the
// guest sees nothing but a gap in time. The vCPU goroutines never end
// across a pause, so their threads keep their seccomp filters.
//
// Freeze is a pause of the vCPUs alone, for a VM that goes on in the same
// process (kiln pause of a container): the devices keep running, so a
// connection of the socket device, a host socket that does not pause,
// stays open, and what the devices finish meanwhile waits in guest memory
// and the interrupt controller until the vCPUs run again; the guest runs
// no instruction while frozen. Resume lets the vCPUs go on. A frozen VM
// cannot be saved: its devices are not still.
//
// With Options.SnapshotAtReady the VM pauses itself, on the vCPU that
// hears the guest's init say it is ready for its job: PausedAtReady is
// closed once it has, and Resume then hands init its job.

// The bits of Machine.attention: what a vCPU's loop must look at before
// it enters the guest again. The loop reads the word once per exit.
const (
	attnStop  = 1 << iota // the VM ends: every vCPU returns
	attnPause             // the VM pauses: every vCPU parks
)

// runPhase is where a machine is in its life, as Pause and Resume see it.
type runPhase int

const (
	phaseBuilt    runPhase = iota // Run has not started the vCPUs
	phaseRunning                  // the vCPUs run
	phasePausing                  // the vCPUs are stopping
	phasePaused                   // every vCPU waits, with its state saved; the devices are paused
	phaseResuming                 // the devices start again
)

func (p runPhase) String() string {
	switch p {
	case phaseBuilt:
		return "not running yet"
	case phaseRunning:
		return "running"
	case phasePausing:
		return "pausing"
	case phasePaused:
		return "paused"
	case phaseResuming:
		return "resuming"
	}
	return fmt.Sprintf("phase %d", int(p))
}

// RunStateError is a call the VM's state does not allow: Pause on a VM
// that is not running, Resume or SaveSnapshot on one that is not paused.
type RunStateError struct {
	Op    string // "pause", "resume", "save"
	State string // "running", "paused", "ended", ...
}

func (e *RunStateError) Error() string {
	if e.State == "ended" {
		return e.Op + ": the VM has ended"
	}
	return e.Op + ": the VM is " + e.State
}

// pauseState is a machine's pausing: its phase and what the vCPUs saved.
type pauseState struct {
	mu        sync.Mutex
	phase     runPhase
	parked    int           // vCPUs waiting in park
	allParked chan struct{} // closed when every vCPU has parked
	resume    chan struct{} // closed by Resume: the parked vCPUs go on
	states    []*cpu.State  // each vCPU's state, saved as it parked
	errs      []error       // or why it could not save it
	atReady   bool          // the guest's init waits for its job: Resume gives it
	frozen    bool          // paused by Freeze: the devices run
	readyOnce sync.Once
	ready     chan struct{} // closed once paused at ready (PausedAtReady)
}

// Pause stops the VM: every vCPU leaves the guest and saves its state on
// its own thread, then the devices pause. It returns once the VM is
// still, or an error if it is not running (not yet, paused, ended).
func (m *Machine) Pause() error {
	if _, err := m.beginPause(false); err != nil {
		return err
	}
	return m.completePause(true)
}

// Freeze stops the vCPUs and leaves the devices running; Resume lets
// them go on. It returns once every vCPU has left the guest,
// or an error if the VM is not running.
func (m *Machine) Freeze() error {
	if _, err := m.beginPause(false); err != nil {
		return err
	}
	return m.completePause(false)
}

// Paused reports whether the VM is paused: its vCPUs wait and its
// devices are still. A VM that ended while paused stays paused, and can
// still be saved.
func (m *Machine) Paused() bool {
	m.pause.mu.Lock()
	defer m.pause.mu.Unlock()
	return m.pause.phase == phasePaused
}

// PausedAtReady is closed when the VM has paused at the moment the
// guest's init was ready for its job (Options.SnapshotAtReady).
func (m *Machine) PausedAtReady() <-chan struct{} { return m.pause.ready }

// Resume lets a paused VM go on where it was: the devices start again,
// then the vCPUs enter the guest. After a pause at ready, the guest's
// init gets its job.
func (m *Machine) Resume() error {
	p := &m.pause
	p.mu.Lock()
	if err := m.stateError("resume", phasePaused); err != nil {
		p.mu.Unlock()
		return err
	}
	p.phase = phaseResuming
	atReady, frozen := p.atReady, p.frozen
	p.mu.Unlock()

	// A device that cannot start again asks the guest's driver for a
	// reset, as for any failure (failures.go); the VM goes on.
	if !frozen {
		_ = m.dev.resume()
	}
	var jobErr error
	if atReady {
		jobErr = m.giveJob()
	}
	p.mu.Lock()
	p.phase, p.atReady, p.frozen = phaseRunning, false, false
	m.attention.And(^uint32(attnPause))
	close(p.resume)
	p.mu.Unlock()
	if jobErr != nil {
		m.stop.Do(m, Result{Reason: ReasonError, Err: jobErr})
		return jobErr
	}
	return nil
}

// stateError returns the error for op on a VM whose phase is not want,
// or that has ended (a VM that ended while paused can still be saved);
// the caller holds pause.mu.
func (m *Machine) stateError(op string, want runPhase) error {
	p := m.pause.phase
	switch {
	case p == want && (!m.stopping() || op == "save"):
		return nil
	case m.stopping():
		return &RunStateError{op, "ended"}
	case p == phasePaused && op == "pause":
		return &RunStateError{op, "already paused"}
	}
	return &RunStateError{op, p.String()}
}

// beginPause asks every vCPU to park: the next time each looks at the
// attention word, before it enters the guest again, it stops. It reports
// whether it began a pause, which the caller then completes. atReady is
// a pause at the guest's init being ready, asked on a vCPU's thread,
// which must not wait: a pause under way already is that one.
func (m *Machine) beginPause(atReady bool) (began bool, err error) {
	p := &m.pause
	p.mu.Lock()
	defer p.mu.Unlock()
	if atReady {
		p.atReady = true
		switch p.phase {
		case phasePausing:
			return false, nil
		case phasePaused:
			p.readyOnce.Do(func() { close(p.ready) })
			return false, nil
		}
	}
	if err := m.stateError("pause", phaseRunning); err != nil {
		return false, err
	}
	n := len(m.cpus)
	p.phase, p.parked = phasePausing, 0
	p.allParked, p.resume = make(chan struct{}), make(chan struct{})
	p.states, p.errs = make([]*cpu.State, n), make([]error, n)
	m.attention.Or(attnPause)
	return true, nil
}

// completePause kicks the vCPUs until every one has parked, then pauses
// the devices, if devices.
func (m *Machine) completePause(devices bool) error {
	p := &m.pause
	p.mu.Lock()
	allParked := p.allParked
	p.mu.Unlock()
	for parked := false; !parked; {
		m.kick()
		select {
		case <-allParked:
			parked = true
		case <-m.end:
			return &RunStateError{"pause", "ended"}
		case <-time.After(kickEvery):
		}
	}
	if devices {
		m.dev.pause()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.frozen = phasePaused, !devices
	if p.atReady {
		p.readyOnce.Do(func() { close(p.ready) })
	}
	return nil
}

// park is a vCPU's part of a pause, on its own thread: it finishes the
// exit it handled last, saves its state if the machine can be saved
// (Options.SnapshotAtReady, or no seccomp filters: seccomp.go), says it
// has stopped, and waits until the VM resumes or ends.
func (m *Machine) park(v vcpu) {
	var st *cpu.State
	var err error
	if m.saveable {
		st, err = m.saveVCPU(v)
	}
	p := &m.pause
	p.mu.Lock()
	id := v.ID()
	p.states[id], p.errs[id] = st, err
	p.parked++
	if p.parked == len(p.states) {
		close(p.allParked)
	}
	resume := p.resume
	p.mu.Unlock()
	select {
	case <-resume:
	case <-m.end:
	}
	v.SetImmediateExit(false) // set by the kicks
}

// saveVCPU finishes v's pending exit and saves its state.
func (m *Machine) saveVCPU(v vcpu) (*cpu.State, error) {
	if err := v.FinishPending(); err != nil {
		return nil, fmt.Errorf("vCPU %d: %w", v.ID(), err)
	}
	return v.SaveState(m.cpuids[v.ID()], m.msrIndices)
}
