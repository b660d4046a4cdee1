package oci

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/ipc"
	"github.com/kiln-vmm/kiln/vmm/machine"
)

// A container's VMM without KVM: a fake VM whose guest is a goroutine
// speaking guest/contract's control messages on the VMM's sockets, as
// kiln's init does, and the VMM's create socket and control socket driven
// as kiln create, start and kill drive them.

// fakeVM is a VM that runs until it is stopped or its guest ends it.
type fakeVM struct {
	stop   chan struct{}
	once   sync.Once
	result chan machine.Result
	mu     sync.Mutex
	closed bool
	paused bool
	conns  []net.Conn // the guest's connections, which a real VM's end closes
}

func newFakeVM() *fakeVM {
	return &fakeVM{stop: make(chan struct{}), result: make(chan machine.Result, 1)}
}

func (f *fakeVM) Run() machine.Result {
	select {
	case r := <-f.result:
		return r
	case <-f.stop:
		return machine.Result{Reason: machine.ReasonStopped}
	}
}
func (f *fakeVM) Stop()                           { f.once.Do(func() { close(f.stop) }) }
func (f *fakeVM) CommandStarted() <-chan struct{} { return nil }

// Freeze and Resume answer as vmm/machine's do: one pause at a time.
func (f *fakeVM) Freeze() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused {
		return &machine.RunStateError{Op: "pause", State: "already paused"}
	}
	f.paused = true
	return nil
}

func (f *fakeVM) Resume() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.paused {
		return &machine.RunStateError{Op: "resume", State: "running"}
	}
	f.paused = false
	return nil
}

// Pause and SaveSnapshot: the fake cannot be checkpointed.
func (f *fakeVM) Pause() error { return errors.New("the fake VM cannot be paused for a checkpoint") }
func (f *fakeVM) SaveSnapshot(string, string) (machine.SnapshotTimes, error) {
	return machine.SnapshotTimes{}, errors.New("the fake VM cannot be saved")
}

func (f *fakeVM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, c := range f.conns {
		if c != nil {
			c.Close()
		}
	}
	return nil
}

// fakeInit is the guest's init for a container that writes out and
// exits with status, or, signalled, with 128+N.
type fakeInit struct {
	t      *testing.T
	vsock  string
	ctl    net.Conn
	status int
	out    string
	vm     *fakeVM
	events chan contract.Control // what it heard
}

func (g *fakeInit) dial(port uint32) net.Conn {
	var c net.Conn
	var err error
	for i := 0; i < 200; i++ {
		if c, err = net.Dial("unix", g.vsock+"_"+strconv.Itoa(int(port))); err == nil {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
	g.t.Errorf("the guest cannot reach port %d: %v", port, err)
	return nil
}

func (g *fakeInit) send(m contract.Control) { g.ctl.Write(contract.MarshalControl(m)) }

// run is the guest's side, from the job to the reset.
func (g *fakeInit) run(exec time.Duration) {
	g.ctl = g.dial(ControlPort)
	stdin, stdout, stderr := g.dial(ControlPort+contract.PortStdin), g.dial(ControlPort+contract.PortStdout), g.dial(ControlPort+contract.PortStderr)
	if g.ctl == nil || stdin == nil || stdout == nil || stderr == nil {
		return
	}
	g.vm.mu.Lock()
	g.vm.conns = []net.Conn{g.ctl, stdin, stdout, stderr}
	g.vm.mu.Unlock()
	g.send(contract.Control{Op: contract.ControlReady})
	s := bufio.NewScanner(g.ctl)
	var status int
	running := false
	for s.Scan() {
		m, err := contract.UnmarshalControl(s.Bytes())
		if err != nil {
			continue
		}
		g.events <- m
		switch m.Op {
		case contract.ControlStart:
			time.Sleep(exec) // the exec, seconds on a kvm-pvm host
			running = true
			g.send(contract.Control{Op: contract.ControlStarted, Pid: 42})
			stdout.Write([]byte(g.out))
			if g.status >= 0 {
				status = g.status
				goto exit
			}
		case contract.ControlSignal:
			if !running {
				g.t.Errorf("a signal reached the guest before the process existed: %+v", m)
			}
			status = 128 + m.Signal
			goto exit
		}
	}
	return
exit:
	g.send(contract.Control{Op: contract.ControlExited, Status: status})
	stdout.Close()
	stderr.Close()
	g.vm.result <- machine.Result{Reason: machine.ReasonReset, HasStatus: true, ExitStatus: status}
}

// vmmFixture is a state directory with a plan, a VMM and its guest.
type vmmFixture struct {
	vmm    *VMM
	guest  *fakeInit
	vm     *fakeVM
	create *os.File // create's end of the socket pair
	stdout bytes.Buffer
	exit   chan Exit
	err    chan error
}

func newVMMFixture(t *testing.T, status int, exec time.Duration) *vmmFixture {
	dir := filepath.Join(t.TempDir(), "c1") // short: the sockets' paths
	require.NoError(t, os.Mkdir(dir, 0o700))
	c := &Container{Dir: dir}
	require.NoError(t, c.SavePlan(&Plan{Shares: EmptyShares(dir), Container: contract.Container{Args: []string{"x"}}}))
	f := &vmmFixture{vm: newFakeVM(), exit: make(chan Exit, 1), err: make(chan error, 1)}
	f.guest = &fakeInit{t: t, vsock: c.VsockPath(), status: status, out: "hello\n", vm: f.vm, events: make(chan contract.Control, 16)}
	var built *config.Config
	f.vmm = &VMM{
		Dir: dir, Kernel: "/k", Initrd: "/i",
		Build: func(cfg *config.Config, opt machine.Options) (VM, error) {
			built = cfg
			go f.guest.run(exec)
			return f.vm, nil
		},
		Options: machine.Options{Stderr: io.Discard},
		Stdin:   bytes.NewReader(nil), Stdout: &f.stdout, Stderr: io.Discard,
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	f.create = os.NewFile(uintptr(fds[0]), "create")
	vmmEnd := os.NewFile(uintptr(fds[1]), "vmm")
	go func() {
		e, err := f.vmm.Run(vmmEnd)
		f.exit <- e
		f.err <- err
	}()
	t.Cleanup(func() { f.create.Close() })
	t.Cleanup(func() {
		if built != nil {
			require.Equal(t, c.VsockPath(), built.Vsock.Path, "the VM's vsock device is the state directory's")
			require.NotNil(t, built.Container)
		}
	})
	return f
}

// created reads the VMM's report and answers it, as create does.
func (f *vmmFixture) created(t *testing.T) {
	var c ipc.Created
	require.NoError(t, ipc.Read(f.create, &c))
	require.Empty(t, c.Error)
	require.NoError(t, ipc.Write(f.create, ipc.Adopted{}))
}

func (f *vmmFixture) call(t *testing.T, r ipc.Request) error {
	return ipc.Call(filepath.Join(f.vmm.Dir, "ctl"), r)
}

func (f *vmmFixture) wait(t *testing.T) Exit {
	select {
	case e := <-f.exit:
		require.NoError(t, <-f.err)
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("the VMM did not end")
		return Exit{}
	}
}

func TestVMMRunsAContainer(t *testing.T) {
	f := newVMMFixture(t, 7, 0)
	f.created(t)
	require.NoError(t, f.call(t, ipc.Request{Op: ipc.OpStart}))
	e := f.wait(t)
	require.True(t, e.HasStatus)
	require.Equal(t, 7, e.Status)
	require.Equal(t, "hello\n", f.stdout.String())
	require.True(t, f.vm.closed)
}

// TestVMMHoldsASignalUntilTheProcessExists: a kill right after start,
// while the guest still execs the process, reaches it once it exists.
func TestVMMHoldsASignalUntilTheProcessExists(t *testing.T) {
	f := newVMMFixture(t, -1, 300*time.Millisecond)
	f.created(t)
	require.NoError(t, f.call(t, ipc.Request{Op: ipc.OpStart}))
	require.NoError(t, f.call(t, ipc.Request{Op: ipc.OpSignal, Signal: int(unix.SIGTERM)}))
	require.ErrorContains(t, f.call(t, ipc.Request{Op: ipc.OpStart}), ErrStarted.Error())
	e := f.wait(t)
	require.Equal(t, 128+int(unix.SIGTERM), e.Status)
	require.Equal(t, contract.ControlStart, (<-f.guest.events).Op)
	require.Equal(t, contract.Control{Op: contract.ControlSignal, Signal: int(unix.SIGTERM)}, <-f.guest.events)
}

// TestVMMPausesTheVM: kiln pause and resume reach the VM, a second
// pause is refused with the machine's words, and a signal sent while
// paused reaches the process.
func TestVMMPausesTheVM(t *testing.T) {
	f := newVMMFixture(t, -1, 0)
	f.created(t)
	require.NoError(t, f.call(t, ipc.Request{Op: ipc.OpStart}))
	require.NoError(t, f.call(t, ipc.Request{Op: ipc.OpPause}))
	f.vm.mu.Lock()
	require.True(t, f.vm.paused)
	f.vm.mu.Unlock()
	require.ErrorContains(t, f.call(t, ipc.Request{Op: ipc.OpPause}), "already paused")
	require.NoError(t, f.call(t, ipc.Request{Op: ipc.OpResume}))
	require.ErrorContains(t, f.call(t, ipc.Request{Op: ipc.OpResume}), "the VM is running")
	require.NoError(t, f.call(t, ipc.Request{Op: ipc.OpSignal, Signal: int(unix.SIGUSR1)}))
	e := f.wait(t)
	require.Equal(t, 128+int(unix.SIGUSR1), e.Status)
}

func TestVMMEndsACreatedContainerAsTheSignalWould(t *testing.T) {
	f := newVMMFixture(t, 0, 0)
	f.created(t)
	require.NoError(t, f.call(t, ipc.Request{Op: ipc.OpSignal, Signal: int(unix.SIGINT)}))
	e := f.wait(t)
	require.True(t, e.HasStatus)
	require.Equal(t, 128+int(unix.SIGINT), e.Status)
}

func TestVMMEndsWhenCreateDies(t *testing.T) {
	f := newVMMFixture(t, 0, 0)
	var c ipc.Created
	require.NoError(t, ipc.Read(f.create, &c))
	f.create.Close() // create died before it recorded the container
	select {
	case <-f.exit:
		err := <-f.err
		require.ErrorIs(t, err, ErrCreateGone)
	case <-time.After(10 * time.Second):
		t.Fatal("the VMM outlived its create")
	}
	require.True(t, f.vm.closed)
}

func TestVMMReportsASetupError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c1")
	require.NoError(t, os.Mkdir(dir, 0o700))
	v := &VMM{Dir: dir, Build: func(*config.Config, machine.Options) (VM, error) {
		return nil, errors.New("the kernel is not a kernel")
	}}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	create := os.NewFile(uintptr(fds[0]), "create")
	defer create.Close()
	_, err = v.Run(os.NewFile(uintptr(fds[1]), "vmm"))
	require.ErrorContains(t, err, "read the plan", "no plan.json")
	var c ipc.Created
	require.NoError(t, ipc.Read(create, &c))
	require.Contains(t, c.Error, "read the plan")
}
