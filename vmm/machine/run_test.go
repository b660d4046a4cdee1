package machine

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices"
	"github.com/kiln-vmm/kiln/devices/virtio"
	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/bus"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/memory"
)

// The run loop against scripted vCPUs, as Firecracker tests its vCPU
// loop (vstate/vcpu.rs: test_vcpu_kick, test_handle_kvm_exit): each Run
// of a fakeVCPU answers with the next step of its script, and a vCPU
// whose script says so stays "in the guest" until it is kicked.

// step is one answer of a fake KVM_RUN.
type step struct {
	exit  kvm.ExitReason
	io    kvm.IOExit
	event kvm.SystemEvent
	err   error // what Run returns instead of an exit: kvm.ErrInterrupted for a signal
	guest bool  // stay in the guest until kicked (immediate_exit), then ErrInterrupted
}

// script returns a vCPU's answers: steps, then the guest for good.
func script(steps ...step) func(n int) step {
	return func(n int) step {
		if n < len(steps) {
			return steps[n]
		}
		return step{guest: true}
	}
}

// fakeVCPU is a scripted vCPU. Its counters are atomic: the test reads
// them while the vCPU's goroutine runs.
type fakeVCPU struct {
	fakeExit // what the last exit says (exits_test.go)
	id       int
	script   func(n int) step
	next     int // the next step; only the vCPU's goroutine uses it
	reason   kvm.ExitReason

	immediate atomic.Bool
	wake      chan struct{} // a kick wakes a vCPU in the guest

	runs        atomic.Int64 // Run calls
	steps       atomic.Int64 // steps taken
	kicks       atomic.Int64 // SetImmediateExit(true) calls
	inGuest     atomic.Bool
	runTID      atomic.Int64 // the thread of the last Run
	otherThread atomic.Bool  // a Run came from another thread
	finished    atomic.Int64 // FinishPending calls
	saves       atomic.Int64
	saveTID     atomic.Int64
	unfinished  atomic.Bool // SaveState before FinishPending
}

func newFake(id int, s func(int) step) *fakeVCPU {
	return &fakeVCPU{id: id, script: s, wake: make(chan struct{}, 1)}
}

func (f *fakeVCPU) ID() int                    { return f.id }
func (f *fakeVCPU) ExitReason() kvm.ExitReason { return f.reason }

func (f *fakeVCPU) Run() error {
	f.runs.Add(1)
	tid := int64(unix.Gettid())
	if old := f.runTID.Swap(tid); old != 0 && old != tid {
		f.otherThread.Store(true)
	}
	if f.immediate.Load() {
		return kvm.ErrInterrupted // KVM_RUN with immediate_exit set
	}
	s := f.script(f.next)
	f.next++
	f.steps.Add(1)
	if s.guest {
		f.inGuest.Store(true)
		for !f.immediate.Load() {
			<-f.wake
		}
		f.inGuest.Store(false)
		return kvm.ErrInterrupted
	}
	if s.err != nil {
		return s.err
	}
	f.fakeExit.io, f.fakeExit.event, f.reason = s.io, s.event, s.exit
	return nil
}

func (f *fakeVCPU) SetImmediateExit(on bool) {
	f.immediate.Store(on)
	if on {
		f.kicks.Add(1)
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

func (f *fakeVCPU) FinishPending() error { f.finished.Add(1); return nil }

func (f *fakeVCPU) SaveState(cpuid []kvm.CPUIDEntry, msrs []uint32) (*cpu.State, error) {
	f.saves.Add(1)
	f.saveTID.Store(int64(unix.Gettid()))
	if f.finished.Load() == 0 {
		f.unfinished.Store(true)
	}
	return &cpu.State{Regs: kvm.Regs{RIP: uint64(0x1000 + f.id)}}, nil
}

// runMachine is a machine with the PC devices on its port bus, an
// entropy device that no driver started, and fake vCPUs: enough to Run.
func runMachine(t *testing.T, fakes ...*fakeVCPU) (*Machine, *fakeDevice) {
	m := newMachine(&config.Config{Command: []string{"true"}}, Options{})
	m.saveable = true
	m.dev = newDeviceManager(nil, nil)
	require.NoError(t, m.dev.addLegacy(&devNull{}, func() { m.stop.Do(m, Result{Reason: ReasonReset}) }, m.onSignal))
	port := &fakeDevice{answer: 0x5a}
	require.NoError(t, m.dev.pio.Insert("port", 0x100, 8, port))
	rng := virtio.NewTransport(virtio.NewRNG(), memory.FromBytes(make([]byte, 4096)), &devices.CountingInterrupt{})
	m.dev.virtio = append(m.dev.virtio, &virtioDevice{name: "virtio-rng", transport: rng})
	for _, f := range fakes {
		m.cpus = append(m.cpus, f)
		m.cpuids = append(m.cpuids, nil)
	}
	t.Cleanup(func() { m.dev.close() })
	return m, port
}

type sink struct{}

func (sink) Read(off uint64, data []byte)  {}
func (sink) Write(off uint64, data []byte) {}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }

// start runs m in a goroutine; the channel gets its result.
func start(m *Machine) <-chan Result {
	res := make(chan Result, 1)
	go func() { res <- m.Run() }()
	return res
}

// result waits for Run's result.
func result(t *testing.T, res <-chan Result) Result {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return Result{}
	}
}

func portOut(port uint16, b byte) step {
	return step{exit: kvm.ExitIO, io: kvm.IOExit{Port: port, Write: true, Size: 1, Count: 1, Data: []byte{b}}}
}

var resetEvent = step{exit: kvm.ExitSystemEvent, event: kvm.SystemEventReset}

// TestRunRetriesAnInterruptedRun: KVM_RUN interrupted by a signal (EINTR,
// which kvm.VCPU.Run turns into ErrInterrupted) is not an error: the loop
// goes back in. A handler's stop (the reset) ends the loop: no Run after.
func TestRunRetriesAnInterruptedRun(t *testing.T) {
	f := newFake(0, script(
		step{err: kvm.ErrInterrupted}, step{err: kvm.ErrInterrupted},
		portOut(0x102, 'a'),
		step{err: kvm.ErrInterrupted},
		portOut(0x103, 'b'),
		resetEvent,
	))
	m, port := runMachine(t, f)
	r := result(t, start(m))
	require.Equal(t, ReasonReset, r.Reason, "%v", r.Err)
	require.Equal(t, [][]byte{{'a'}, {'b'}}, port.writes)
	require.EqualValues(t, 6, f.runs.Load(), "every interrupted Run was retried, and none after the reset")
	require.False(t, f.otherThread.Load(), "every KVM_RUN from the vCPU's one thread")
}

// TestStopKicksAVCPUInTheGuest: a stop from the host while a vCPU is in
// the guest (blocked in KVM_RUN) ends the VM: the kick sets immediate_exit
// (and signals the thread), the vCPU's Run returns, and it sees the stop.
func TestStopKicksAVCPUInTheGuest(t *testing.T) {
	inGuest, busy := newFake(0, script()), newFake(1, func(int) step { return portOut(0x100, 1) })
	m, _ := runMachine(t, inGuest, busy)
	res := start(m)
	require.Eventually(t, func() bool { return inGuest.inGuest.Load() && busy.runs.Load() > 100 }, 5*time.Second, time.Millisecond)
	m.Stop()
	r := result(t, res)
	require.Equal(t, ReasonStopped, r.Reason)
	require.Positive(t, inGuest.kicks.Load(), "kicked out of the guest")
	require.False(t, inGuest.inGuest.Load())
	require.NotZero(t, m.tids[0].Load(), "the kick knows the vCPU's thread, to signal it")
}

// TestRunErrorEndsTheVM: an error from KVM_RUN ends the VM with an error
// that names the vCPU; the other vCPU is kicked out of the guest.
func TestRunErrorEndsTheVM(t *testing.T) {
	fail := &kvm.IoctlError{Op: "KVM_RUN", Errno: unix.EFAULT}
	other, failing := newFake(0, script()), newFake(1, script(portOut(0x100, 1), step{err: fail}))
	m, _ := runMachine(t, other, failing)
	r := result(t, start(m))
	require.Equal(t, ReasonError, r.Reason)
	require.ErrorIs(t, r.Err, unix.EFAULT)
	require.EqualError(t, r.Err, "vCPU 1: KVM_RUN: bad address")
	require.Positive(t, other.kicks.Load())
}

// TestExitHandlerStopsTheVM: an exit that ends the VM (a triple fault)
// stops its vCPU at once and the others soon.
func TestExitHandlerStopsTheVM(t *testing.T) {
	crash := newFake(0, script(portOut(0x100, 1), step{exit: kvm.ExitShutdown}))
	other := newFake(1, script())
	m, _ := runMachine(t, crash, other)
	r := result(t, start(m))
	require.Equal(t, ReasonShutdown, r.Reason)
	require.ErrorContains(t, r.Err, "vCPU 0: triple fault")
	require.EqualValues(t, 2, crash.runs.Load())
}

// TestPauseSavesOnEachVCPUThread: Pause stops every vCPU, one in the guest
// and one busy with exits; each finishes its exit and saves its state on
// its own thread, the one that runs its KVM_RUN; the devices pause; no
// vCPU runs until Resume, and then they go on. A VM can pause again, and
// calls in the wrong state say why.
func TestPauseSavesOnEachVCPUThread(t *testing.T) {
	inGuest, busy := newFake(0, script()), newFake(1, func(int) step { return portOut(0x100, 1) })
	m, _ := runMachine(t, inGuest, busy)
	var rse *RunStateError
	require.ErrorAs(t, m.Pause(), &rse, "not running yet")
	require.EqualError(t, m.Pause(), "pause: the VM is not running yet")
	res := start(m)
	require.Eventually(t, func() bool { return inGuest.inGuest.Load() && busy.runs.Load() > 100 }, 5*time.Second, time.Millisecond)
	require.EqualError(t, m.Resume(), "resume: the VM is running")

	for round := 1; round <= 2; round++ {
		require.NoError(t, m.Pause())
		require.True(t, m.Paused())
		require.EqualError(t, m.Pause(), "pause: the VM is already paused")
		require.True(t, m.dev.virtio[0].transport.Paused(), "the devices pause")
		for _, f := range []*fakeVCPU{inGuest, busy} {
			require.EqualValues(t, round, f.saves.Load(), "vCPU %d saved once a pause", f.id)
			require.Equal(t, f.runTID.Load(), f.saveTID.Load(), "vCPU %d saved on its own thread", f.id)
			require.False(t, f.unfinished.Load(), "vCPU %d finished its exit first", f.id)
			require.EqualValues(t, 0x1000+f.id, m.pause.states[f.id].Regs.RIP)
		}
		runs := busy.runs.Load()
		time.Sleep(20 * time.Millisecond)
		require.Equal(t, runs, busy.runs.Load(), "no vCPU runs while paused")

		require.NoError(t, m.Resume())
		require.False(t, m.Paused())
		require.False(t, m.dev.virtio[0].transport.Paused())
		require.Eventually(t, func() bool { return busy.runs.Load() > runs+100 && inGuest.inGuest.Load() }, 5*time.Second, time.Millisecond,
			"the vCPUs go on")
	}
	require.False(t, inGuest.otherThread.Load() || busy.otherThread.Load(), "a pause does not move a vCPU to another thread")

	m.Stop()
	require.Equal(t, ReasonStopped, result(t, res).Reason)
	require.EqualError(t, m.Pause(), "pause: the VM has ended")
	require.EqualError(t, m.Resume(), "resume: the VM has ended")
}

// TestFreezeLeavesTheDevicesRunning: Freeze stops every vCPU as Pause
// does, but the devices keep running; a frozen VM cannot be saved, and
// Resume lets the vCPUs go on. Then a Pause pauses the devices again.
func TestFreezeLeavesTheDevicesRunning(t *testing.T) {
	busy := newFake(0, func(int) step { return portOut(0x100, 1) })
	m, _ := runMachine(t, busy)
	res := start(m)
	require.Eventually(t, func() bool { return busy.runs.Load() > 100 }, 5*time.Second, time.Millisecond)

	require.NoError(t, m.Freeze())
	require.True(t, m.Paused())
	require.EqualError(t, m.Freeze(), "pause: the VM is already paused")
	require.False(t, m.dev.virtio[0].transport.Paused(), "the devices run")
	_, err := m.SaveSnapshot(t.TempDir(), "test")
	var rse *RunStateError
	require.ErrorAs(t, err, &rse, "a frozen VM is not saved: its devices run")
	runs := busy.runs.Load()
	time.Sleep(20 * time.Millisecond)
	require.Equal(t, runs, busy.runs.Load(), "no vCPU runs while frozen")
	require.NoError(t, m.Resume())
	require.False(t, m.Paused())
	require.Eventually(t, func() bool { return busy.runs.Load() > runs+100 }, 5*time.Second, time.Millisecond, "the vCPUs go on")

	require.NoError(t, m.Pause())
	require.True(t, m.dev.virtio[0].transport.Paused(), "a pause after a thaw pauses the devices")
	require.NoError(t, m.Resume())
	m.Stop()
	require.Equal(t, ReasonStopped, result(t, res).Reason)
}

// TestStopWhilePaused: a paused VM stops; it stays paused, so it can still
// be saved, and cannot resume.
func TestStopWhilePaused(t *testing.T) {
	f := newFake(0, script())
	m, _ := runMachine(t, f)
	res := start(m)
	require.Eventually(t, f.inGuest.Load, 5*time.Second, time.Millisecond)
	require.NoError(t, m.Pause())
	m.Stop()
	require.Equal(t, ReasonStopped, result(t, res).Reason)
	require.True(t, m.Paused())
	m.pause.mu.Lock()
	require.NoError(t, m.stateError("save", phasePaused), "saving is still allowed")
	m.pause.mu.Unlock()
	require.Error(t, m.Resume())
}

// TestPauseAtReady: with SnapshotAtReady, the vCPU on which the guest's
// init says it is ready parks before it enters the guest again, so init
// reads nothing of its job; the other vCPUs are kicked and park too, and
// PausedAtReady is closed. Resume hands init its job, which it then
// reads.
func TestPauseAtReady(t *testing.T) {
	hdr := make([]byte, 8)
	in := func(i int) step {
		return step{exit: kvm.ExitIO, io: kvm.IOExit{Port: contract.SignalPort + contract.JobOffset, Size: 4, Count: 1, Data: hdr[4*i : 4*i+4]}}
	}
	initCPU := newFake(0, script(portOut(contract.SignalPort+contract.EventOffset, byte(contract.EventReady)), in(0), in(1), resetEvent))
	other := newFake(1, script())
	m, _ := runMachine(t, initCPU, other)
	m.snapshotAtReady = true
	res := start(m)
	select {
	case <-m.PausedAtReady():
	case <-time.After(5 * time.Second):
		t.Fatal("no pause at ready")
	}
	require.True(t, m.Paused())
	require.EqualValues(t, 1, initCPU.steps.Load(), "no step after the ready event before the pause")
	require.EqualValues(t, 1, initCPU.saves.Load())
	require.EqualValues(t, 1, other.saves.Load())
	b := make([]byte, 4)
	m.dev.pio.Read(contract.SignalPort+contract.JobOffset, b)
	require.Equal(t, []byte{0, 0, 0, 0}, b, "no job before the resume")

	require.NoError(t, m.Resume())
	r := result(t, res)
	require.Equal(t, ReasonReset, r.Reason, "%v", r.Err)
	n, err := contract.JobLength(hdr)
	require.NoError(t, err, "init read its job's header: %q", hdr)
	require.Positive(t, n)
}

// TestRunLoopDoesNotAllocate: handling an exit costs no allocation: the
// loop, the interface, the dispatch and the bus.
func TestRunLoopDoesNotAllocate(t *testing.T) {
	const exits = 1000
	done := errors.New("done")
	out := portOut(0x100, 1)
	f := newFake(0, func(n int) step {
		if n == exits {
			return step{err: done}
		}
		return out
	})
	m, _ := runMachine(t, f)
	m.dev.pio = bus.New("pio") // a device that keeps nothing
	require.NoError(t, m.dev.pio.Insert("sink", 0x100, 8, sink{}))
	allocs := testing.AllocsPerRun(3, func() {
		f.next = 0
		require.ErrorIs(t, m.runVCPU(f), done)
	})
	t.Logf("%v allocations for %d exits", allocs, exits)
	require.Less(t, allocs, 10.0, "allocations for %d exits", exits)
}

// TestPauseAtAppReady: a ready-app snapshot's VM does not pause when
// init is ready for its job: init reads the job that starts the app
// (its Ready condition in it), reports the app running, and the VM
// pauses when init says the app is ready, before init reads a job again.
func TestPauseAtAppReady(t *testing.T) {
	hdr := make([]byte, 8)
	in := func(i int) step {
		return step{exit: kvm.ExitIO, io: kvm.IOExit{Port: contract.SignalPort + contract.JobOffset, Size: 4, Count: 1, Data: hdr[4*i : 4*i+4]}}
	}
	ev := func(e contract.Event) step { return portOut(contract.SignalPort+contract.EventOffset, byte(e)) }
	initCPU := newFake(0, script(ev(contract.EventReady), in(0), in(1), ev(contract.EventRunning), ev(contract.EventAppReady), resetEvent))
	m, _ := runMachine(t, initCPU)
	m.cfg.Ready = &contract.Ready{Port: 8080}
	m.snapshotAtReady = true
	res := start(m)
	select {
	case <-m.PausedAtReady():
	case <-time.After(5 * time.Second):
		t.Fatal("no pause at the app's readiness")
	}
	require.EqualValues(t, 5, initCPU.steps.Load(), "the pause comes at EventAppReady, not at EventReady")
	n, err := contract.JobLength(hdr)
	require.NoError(t, err, "init read the app's job at EventReady: %q", hdr)
	require.Positive(t, n)
	select {
	case <-m.CommandStarted():
	default:
		t.Fatal("the app's start was not seen")
	}
	require.True(t, m.appSnapshot())
	m.Stop()
	require.Equal(t, ReasonStopped, result(t, res).Reason)
}
