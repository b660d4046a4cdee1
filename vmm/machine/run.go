package machine

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
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
	// ReasonPaused: the guest's init was ready for its job and the VM
	// paused for a snapshot (Options.SnapshotAtReady); every vCPU saved
	// its state.
	ReasonPaused
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
	case ReasonPaused:
		return "paused for a snapshot"
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

// Run runs the VM until it ends and returns how it ended.
func (m *Machine) Run() Result {
	// The build is done: the process's seccomp filter goes on every
	// thread, before any vCPU's goes on its own (seccomp.go).
	if err := m.installProcessFilter(); err != nil {
		return m.finish(Result{Reason: ReasonError, Err: err})
	}
	var wg sync.WaitGroup
	tids := make([]int, len(m.vcpus))
	filterErrs := make([]error, len(m.vcpus))
	ready := make(chan struct{}, len(m.vcpus))
	for i, v := range m.vcpus {
		wg.Add(1)
		go func(i int, v *kvm.VCPU) {
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
			tids[i] = unix.Gettid()
			err := m.installVCPUFilter(v)
			filterErrs[i] = err
			ready <- struct{}{}
			if err == nil {
				err = m.runVCPU(v)
			}
			if err != nil {
				m.stop.Do(m, Result{Reason: ReasonError, Err: err})
			}
		}(i, v)
	}
	for range m.vcpus {
		<-ready
	}
	if errors.Join(filterErrs...) == nil {
		m.reportSeccomp(m.verbose)
	}

	<-m.end
	// Wake vCPUs blocked in KVM_RUN: immediate_exit makes the next entry
	// return at once, and a signal interrupts one already in the guest.
	// SIGURG is the signal Go's runtime itself uses to preempt threads, so
	// it is always handled and harmless.
	for i, v := range m.vcpus {
		v.SetImmediateExit(true)
		_ = unix.Tgkill(unix.Getpid(), tids[i], unix.SIGURG)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return m.finish(m.stop.result)
		case <-time.After(10 * time.Millisecond):
			for i := range m.vcpus {
				_ = unix.Tgkill(unix.Getpid(), tids[i], unix.SIGURG)
			}
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

// runVCPU is one vCPU's run loop: enter the guest, handle the exit, repeat.
// It returns nil when the VM ends normally and an error when it cannot go on.
// With --trace or --stats each exit is handled through the vCPU's recorder,
// which times and records it; without, rec is nil and costs one branch.
func (m *Machine) runVCPU(v *kvm.VCPU) error {
	if v.ID == 0 {
		m.firstRun = time.Now()
	}
	rec := m.observe.vcpu(v)
	for {
		if m.stopping() {
			if m.stop.result.Reason == ReasonPaused {
				m.saveVCPU(v)
			}
			return nil
		}
		err := v.Run()
		if errors.Is(err, kvm.ErrInterrupted) {
			continue // a signal: check for the end, then go back in
		}
		if err != nil {
			return fmt.Errorf("vCPU %d: %w", v.ID, err)
		}
		var stop bool
		if rec == nil {
			stop, err = m.handleExit(v.ID, v, v.ExitReason())
		} else {
			stop, err = rec.handle(v.ExitReason(), m.handleExit)
		}
		if stop || err != nil {
			return err
		}
	}
}
