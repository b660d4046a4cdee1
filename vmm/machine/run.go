package machine

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// Reason says why a VM ended.
type Reason int

const (
	// ReasonReset: the guest reset the machine through the i8042, which is
	// how a Linux guest with reboot=k reboots or powers off.
	ReasonReset Reason = iota
	// ReasonShutdown: a triple fault or a KVM shutdown event; the guest
	// crashed.
	ReasonShutdown
	// ReasonError: the VMM could not go on (a KVM error, an emulation
	// failure); Err says what.
	ReasonError
	// ReasonStopped: the host asked the VM to stop (Ctrl-A X, a signal).
	ReasonStopped
)

func (r Reason) String() string {
	switch r {
	case ReasonReset:
		return "reset"
	case ReasonShutdown:
		return "shutdown (triple fault)"
	case ReasonError:
		return "error"
	case ReasonStopped:
		return "stopped"
	}
	return fmt.Sprintf("reason %d", int(r))
}

// Result is how a VM ended.
type Result struct {
	Reason Reason
	Err    error // with ReasonError

	// ExitStatus is the guest command's exit status, if the guest init
	// reported one through the signal device.
	ExitStatus int
	HasStatus  bool

	// BootTime is from kiln's start to the guest's user space, if reported.
	BootTime    time.Duration
	HasBootTime bool
	// Phases are the moments that divide the VM's life.
	Phases Phases
	// Failures are the devices that asked the guest for a reset.
	Failures []DeviceFailure
}

// Phases are the moments of a VM's life: kiln starts, vCPU 0 first enters
// the guest, the guest's init reports user space and starts its command,
// the VM ends. A moment that never came is zero.
type Phases struct {
	Start, FirstRun, Userspace, Running, End time.Time
}

// stopOnce records the first reason to end the VM and wakes every vCPU.
type stopOnce struct {
	once   sync.Once
	result Result
}

func (s *stopOnce) Do(m *Machine, r Result) {
	s.once.Do(func() {
		s.result = r
		m.attention.Or(attnStop)
		close(m.end)
	})
}

// InputReady is closed when the guest can take console input without
// losing it: when its init reports that it starts its command (kiln's init
// sets up the console first), or, for a guest whose init never reports, a
// grace period after its serial driver starts listening.
func (m *Machine) InputReady() <-chan struct{} {
	ready := make(chan struct{})
	go func() {
		select {
		case <-m.dev.signal.CommandStarted():
		case <-afterClosed(m.dev.serial.RxEnabled(), m.inputGrace()):
		case <-m.end:
		}
		close(ready)
	}()
	return ready
}

// UserspaceReached is closed when the guest's init reports user space on
// the boot-signal device.
func (m *Machine) UserspaceReached() <-chan struct{} { return m.dev.signal.UserspaceReached() }

// CommandStarted is closed when the guest's init starts its job's command.
func (m *Machine) CommandStarted() <-chan struct{} { return m.dev.signal.CommandStarted() }

// inputGrace is how long after the serial driver starts input is held back
// for a guest that never reports user space: a few seconds on hardware KVM,
// where a whole boot takes less than one, and longer on a PVM host, whose
// guests reach user space tens of seconds after their serial driver starts.
func (m *Machine) inputGrace() time.Duration {
	if m.host.PVM {
		return 45 * time.Second
	}
	return 3 * time.Second
}

// afterClosed returns a channel that fires d after c is closed.
func afterClosed(c <-chan struct{}, d time.Duration) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		<-c
		time.Sleep(d)
		close(out)
	}()
	return out
}

// Stop ends the VM from the host side (for example on Ctrl-A X).
func (m *Machine) Stop() { m.stop.Do(m, Result{Reason: ReasonStopped}) }

// Run runs the VM until it ends and returns how it ended. It keeps
// running across a pause (Pause, Resume; pause.go).
func (m *Machine) Run() Result {
	// What start-up touched of kiln's binary, found while files can
	// still be opened, and dropped once the guest's command runs
	// (trim.go).
	m.trim.find()
	// The build is done: the process's seccomp filter goes on every
	// thread, before any vCPU's goes on its own (seccomp.go).
	if err := m.installProcessFilter(); err != nil {
		return m.finish(Result{Reason: ReasonError, Err: err})
	}
	if m.cpus == nil {
		for _, v := range m.vcpus {
			m.cpus = append(m.cpus, kvmVCPU{v})
		}
	}
	m.tids = make([]atomic.Int32, len(m.cpus))
	// From here Pause may kick the vCPUs: one that has not started yet
	// sees the pause before it first enters the guest.
	m.pause.mu.Lock()
	m.pause.phase = phaseRunning
	m.pause.mu.Unlock()
	var wg sync.WaitGroup
	filterErrs := make([]error, len(m.cpus))
	ready := make(chan struct{}, len(m.cpus))
	for i, v := range m.cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A bug in a device must end this VM with a message, not kill
			// kiln with the terminal left in raw mode.
			defer func() {
				if r := recover(); r != nil {
					m.stop.Do(m, Result{Reason: ReasonError, Err: fmt.Errorf("vCPU %d: internal error: %v", i, r)})
				}
			}()
			// KVM requires a vCPU's ioctls to come from one thread, and
			// the thread carries the vCPU's seccomp filter, which no
			// other goroutine may run under: the goroutine never unlocks
			// it, so Go ends the thread when the goroutine returns.
			runtime.LockOSThread()
			m.tids[i].Store(int32(unix.Gettid()))
			err := m.installVCPUFilter(v.ID())
			filterErrs[i] = err
			ready <- struct{}{}
			if err == nil {
				err = m.runVCPU(v)
			}
			if err != nil {
				m.stop.Do(m, Result{Reason: ReasonError, Err: err})
			}
		}()
	}
	for range m.cpus {
		<-ready
	}
	if errors.Join(filterErrs...) == nil {
		m.reportSeccomp(m.verbose)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Wait for the end, pausing on the way when the guest's init is
	// ready and the VM is to be snapshotted, and dropping start-up's
	// pages once the guest's init starts its command: the devices are
	// set up by then, and kiln's part is its run loop.
	started := m.dev.signal.CommandStarted()
	for {
		select {
		case <-started:
			started = nil
			m.TrimStartup()
		case <-m.pauseAtReady:
			_ = m.completePause(true) // or the VM ended, which the next turn sees
		case <-m.end:
			// Every vCPU returns: the parked ones wake, and kicks bring
			// the others out of the guest.
			for {
				m.kick()
				select {
				case <-done:
					return m.finish(m.stop.result)
				case <-time.After(kickEvery):
				}
			}
		}
	}
}

// kickEvery is how often the vCPUs are kicked again while the VM waits
// for them to stop: a signal can arrive just before a vCPU enters
// KVM_RUN, where it does not interrupt it.
const kickEvery = 10 * time.Millisecond

// kick makes every vCPU leave the guest soon: immediate_exit makes its
// next KVM_RUN return at once, and a signal interrupts one already in the
// guest. SIGURG is the signal Go's runtime itself uses to preempt
// threads, so it is always handled and harmless.
func (m *Machine) kick() {
	for i, v := range m.cpus {
		v.SetImmediateExit(true)
		if tid := int(m.tids[i].Load()); tid != 0 {
			_ = unix.Tgkill(unix.Getpid(), tid, unix.SIGURG)
		}
	}
}

// finish adds what the signal device recorded to the result, and lets the
// observer (--trace, --stats) finish its work.
func (m *Machine) finish(r Result) Result {
	r.ExitStatus, r.HasStatus = m.dev.signal.ExitStatus()
	userspace, ok := m.dev.signal.Userspace()
	if m.restored && ok {
		// The guest was in user space from its first instruction.
		userspace = m.firstRun
	}
	if ok {
		r.BootTime, r.HasBootTime = userspace.Sub(m.start), true
	}
	running, _ := m.dev.signal.Running()
	r.Phases = Phases{Start: m.start, FirstRun: m.firstRun, Userspace: userspace, Running: running, End: time.Now()}
	r.Failures, _ = m.Failures()
	m.observe.finish(r.Phases, r.Failures)
	return r
}

// stopping reports whether the VM is ending.
func (m *Machine) stopping() bool {
	select {
	case <-m.end:
		return true
	default:
		return false
	}
}

// runVCPU is one vCPU's run loop: enter the guest, handle the exit,
// repeat. It returns nil when the VM ends normally and an error when it
// cannot go on. Before each entry it looks at the attention word, which
// says the VM stops or pauses; a pause parks the vCPU here, on its own
// thread, until the VM resumes (pause.go). With --trace or --stats each
// exit is handled through the vCPU's recorder, which times and records
// it; without, rec is nil and costs one branch.
func (m *Machine) runVCPU(v vcpu) error {
	if v.ID() == 0 {
		m.firstRun = time.Now()
	}
	rec := m.observe.vcpu(v)
	for {
		if a := m.attention.Load(); a != 0 {
			if a&attnStop != 0 {
				return nil
			}
			m.park(v)
			continue
		}
		switch err := v.Run(); {
		case err == nil:
		case errors.Is(err, kvm.ErrInterrupted):
			continue // a signal or a kick: look at why, then go back in
		default:
			return fmt.Errorf("vCPU %d: %w", v.ID(), err)
		}
		var stop bool
		var err error
		if rec == nil {
			stop, err = m.handleExit(v.ID(), v, v.ExitReason())
		} else {
			stop, err = rec.handle(v.ExitReason(), m.handleExit)
		}
		if stop || err != nil {
			return err
		}
	}
}
