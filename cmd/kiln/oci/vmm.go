package oci

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/tap"
	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/ipc"
	"github.com/kiln-vmm/kiln/vmm/machine"
)

// The VMM process of a container (`kiln _oci-vmm STATEDIR`, started by
// kiln create, spawn.go): the host process that is the container. Its
// stdio are the container's; its pid is in the engine's pid file; it
// exits with the container process's exit status (128+N if a signal N
// ended it), which the engine reads as the container's.
//
//  1. It listens for the guest's control and stdio connections (Link),
//     builds the VM from the warm snapshot (warm.go) with the container
//     as the job, and runs it: the guest's init sets the container up
//     and reports ready.
//  2. It serves kiln start and kill on its control socket, tells kiln
//     create the container is created (ipc.Created), and once create has
//     recorded it (ipc.Adopted) lives on its own. A create that dies
//     before that takes the VM with it: the VMM sees its socket close.
//  3. kiln start: the guest's init runs the process, and reports it
//     started once its exec succeeded. A signal, from kiln kill or sent
//     to this process directly (conmon relays SIGTERM and SIGINT so),
//     goes to the process in the guest; Process holds it until the
//     process exists, and before the start a signal that would end a
//     process ends the VM instead. SIGKILL cannot be caught: kiln kill
//     sends it here, and the VM ends with this process.
//     kiln pause and resume stop the VM's vCPUs and let them go on
//     (pause.go); a signal sent meanwhile reaches the guest on resume.
//  4. When the process exits, the guest's init reports its status and
//     resets the VM; this process copies the last of its output and
//     exits with that status.

// VM is what a container's VMM needs of its virtual machine
// (vmm/machine's Machine).
type VM interface {
	Run() machine.Result
	Stop()
	// Freeze stops the vCPUs until Resume, the devices running, so the
	// guest's connections stay open (vmm/machine/pause.go).
	Freeze() error
	Resume() error
	// Pause stops the vCPUs and the devices, for a checkpoint's
	// SaveSnapshot; Resume lets them go on.
	Pause() error
	SaveSnapshot(dir, build string) (machine.SnapshotTimes, error)
	CommandStarted() <-chan struct{}
	Close() error
}

// Builder builds the VM of cfg.
type Builder func(cfg *config.Config, opt machine.Options) (VM, error)

// VMM is the VMM of one container.
type VMM struct {
	Dir            string // the state directory
	Kernel, Initrd string
	Build          Builder
	// Options are the machine's options but for its console, which is
	// the state directory's console file.
	Options machine.Options
	// Stdin, Stdout and Stderr are the container's stdio.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ReadyTimeout bounds the guest's setup of the container once the VM
	// runs; zero is readyTimeout.
	ReadyTimeout time.Duration
	// Restored: Build restores the VM from a checkpoint (kiln restore,
	// checkpoint.go), whose process runs: the VMM waits for the guest to
	// connect again instead of for its setup, and the container is
	// running once created.
	Restored bool

	terminal bool
	link     *Link
	console  *os.File
	tap      *tap.Tap // the VM's, in the engine's network namespace; nil without
	ctl      net.Listener
	proc     *Process // the container's process, and the signals for it
	execs    execs    // the execs running (vmmexec.go)
	ended    chan struct{}
	res      machine.Result // once ended is closed

	mu      sync.Mutex
	vm      VM
	aborted bool

	stopSig  atomic.Int32 // the signal that ended a container before its start
	finished atomic.Bool

	marks *PhaseLog // KILN_PHASES's (phases.go); nil without

	// A checkpoint's (checkpoint.go): the guest's answers, one at a
	// time; whether the VM ended because it was checkpointed; the
	// process's pid in the guest; a restored container's interfaces.
	ckpt         chan contract.Control
	ckptMu       sync.Mutex
	checkpointed atomic.Bool
	guestPid     atomic.Int64
	restoredNet  []contract.Interface
}

// readyTimeout bounds the guest's setup of a container after the VM
// starts: a cold boot for the snapshot comes before it, not in it.
const readyTimeout = 5 * time.Minute

// Exit is how the container ended: its process's status, or how its VM
// ended without one.
type Exit struct {
	Status    int  // the container's exit status (128+N: signal N)
	HasStatus bool // false: the VM ended without one, Result says how
	Result    machine.Result
}

// ErrCreateGone says kiln create went away before it recorded the
// container: the VMM ends its VM, leaving nothing running.
var ErrCreateGone = errors.New("kiln create ended before it recorded the container")

// Run builds and runs the VM, reporting to kiln create on create. An
// error is one before the container was created, which create was told
// (when it could be); after, Exit says how the container ended.
func (v *VMM) Run(create *os.File) (Exit, error) {
	v.marks = OpenPhaseLog(filepath.Base(v.Dir))
	v.marks.MarkAt(StepVMM, v.Options.Start, nil)
	defer v.marks.Close()
	defer v.marks.Mark(StepEnd, nil) // after closeAll: the VM is gone
	defer v.closeAll()
	v.ckpt = make(chan contract.Control, 4)
	created, adopted := v.watchCreate(create)
	if err := v.setUp(); err != nil {
		ipc.Write(create, ipc.Created{Error: err.Error()})
		create.Close()
		return Exit{}, err
	}
	v.serve()
	// Created: tell create, and wait for it to have recorded it.
	close(created)
	err := ipc.Write(create, ipc.Created{})
	if err == nil {
		err = <-adopted
	}
	create.Close()
	if err != nil {
		v.vm.Stop() // create is gone: nobody knows of this container
		<-v.ended
		return Exit{}, err
	}
	if v.Restored {
		if err := v.resumeRestored(); err != nil {
			fmt.Fprintf(v.Options.Stderr, "kiln: restore: %v\n", err)
			v.vm.Stop()
		}
	}
	<-v.ended
	v.proc.Exited()
	v.finished.Store(true)
	v.vm.Close() // closes the guest's connections: the copies end
	v.link.WaitOutput(10 * time.Second)
	return v.exit(), nil
}

// watchCreate reads create's answer. Create sends nothing before the VMM
// reports: a read that ends before then is create's death, which aborts
// the VM; after, it is the Adopted answer or that death.
func (v *VMM) watchCreate(create *os.File) (chan<- struct{}, <-chan error) {
	created := make(chan struct{})
	adopted := make(chan error, 1)
	go func() {
		var a ipc.Adopted
		err := ipc.Read(create, &a)
		select {
		case <-created:
		default:
			if err == nil {
				err = errors.New("kiln create answered before the container was created")
			}
			v.abort()
		}
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrCreateGone, err)
		}
		adopted <- err
	}()
	return created, adopted
}

// abort ends the VM, or the build of one, because create died.
func (v *VMM) abort() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.aborted = true
	if v.vm != nil {
		v.vm.Stop()
	}
}

func (v *VMM) isAborted() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.aborted
}

// setUp builds the VM and runs it until the guest reports the container
// set up.
func (v *VMM) setUp() (err error) {
	start := v.Options.Start // the process's
	if start.IsZero() {
		start = time.Now()
	}
	c := &Container{Dir: v.Dir}
	plan, err := LoadPlan(c.PlanPath())
	if err != nil {
		return err
	}
	v.terminal = plan.Container.Terminal
	if v.link, err = Listen(c.VsockPath(), ControlPort, v.terminal); err != nil {
		return err
	}
	if v.console, err = os.OpenFile(c.ConsolePath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
		return fmt.Errorf("the guest's console: %w", err)
	}
	cfg := &config.Config{Shape: ShapeOf(v.Kernel, v.Initrd, plan.VMSize(), plan.Shares, c.VsockPath())}
	cfg.Container = &plan.Container
	opt := v.Options
	opt.Console, opt.Start = &capped{w: v.console, left: 1 << 20}, start
	opt.Checkpointable = true // kiln checkpoint saves it while it runs
	if plan.Network != nil {
		// The tap in the engine's namespace, made while this process
		// may still make one (network.go).
		if v.tap, err = c.plumb(plan.Network); err != nil {
			return err
		}
		if err := withNetwork(cfg, plan.Network, v.tap); err != nil {
			return err
		}
		opt.Taps = []*tap.Tap{v.tap}
	} else if plan.NewNetns {
		// This process's own namespace, which an engine may give an
		// interface before start (network.go).
		if v.tap, err = newNetnsTap(cfg); err != nil {
			return err
		}
		opt.Taps = []*tap.Tap{v.tap}
	}
	vm, err := v.Build(cfg, opt)
	if err != nil {
		return err
	}
	v.marks.Mark(StepBuilt, nil)
	v.mu.Lock()
	v.vm = vm
	aborted := v.aborted
	v.mu.Unlock()
	if aborted {
		return ErrCreateGone
	}
	// Into the container's host cgroup (cgroup.go), now that the VM is
	// built and before it first runs: the guest's RAM, its vCPUs' time and
	// its I/O are the cgroup's from here on, and kiln's seccomp filter,
	// set when the VM runs, would not let this process open the file.
	if plan.Cgroup != nil {
		if err := plan.Cgroup.Join(os.Getpid()); err != nil {
			return err
		}
	}
	// The control socket is made now: once the VM runs, kiln's seccomp
	// filter lets this process accept connections, not make sockets.
	if v.ctl, err = net.Listen("unix", c.ControlPath()); err != nil {
		return fmt.Errorf("the VMM's control socket: %w", err)
	}
	v.link.Stdio(v.Stdin, v.Stdout, v.Stderr)
	v.ended = make(chan struct{})
	go func() {
		v.res = vm.Run()
		close(v.ended)
	}()
	timeout := v.ReadyTimeout
	if timeout == 0 {
		timeout = readyTimeout
	}
	var ready contract.Control
	if v.Restored {
		// The process runs; the guest's init connects again and waits
		// for its interfaces and clock (resumeRestored).
		v.restoredNet = cfg.Job().Net
		ready, err = v.link.Restored(v.ended, timeout)
	} else {
		ready, err = v.link.Ready(v.ended, vm.CommandStarted(), timeout)
	}
	if err != nil {
		vm.Stop()
		<-v.ended
		if v.isAborted() {
			return ErrCreateGone
		}
		return err
	}
	if ready.Pid != 0 {
		v.guestPid.Store(int64(ready.Pid)) // a restored process's
	}
	v.marks.Mark(StepReady, ready.Took)
	return nil
}

// serve starts answering kiln start, kill and exec, and relaying the signals
// this process receives.
func (v *VMM) serve() {
	v.proc = &Process{
		Deliver: func(s Signal) error {
			return v.link.Send(contract.Control{Op: contract.ControlSignal, Signal: int(s.Sig), All: s.All})
		},
		End: func(sig unix.Signal) {
			v.stopSig.CompareAndSwap(0, int32(sig))
			v.vm.Stop()
		},
	}
	go v.follow()
	go ipc.ServeExec(v.ctl, v.handle, v.exec)
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE) // a closed stdout is an error, not death
	go v.relay(sigs)
	go func() { <-v.ended; signal.Stop(sigs) }()
}

// closeAll releases what setUp made.
func (v *VMM) closeAll() {
	if v.vm != nil {
		v.vm.Close()
	}
	if v.ctl != nil {
		v.ctl.Close()
	}
	if v.link != nil {
		v.link.Close()
	}
	if v.console != nil {
		v.console.Close()
	}
	if v.tap != nil {
		v.tap.Close() // after the VM's: the tap goes with it
	}
}

// forwarded are the signals the VMM relays to the container's process:
// all but those the Go runtime or the VMM needs (SIGURG is Go's
// preemption, SIGCHLD, SIGPIPE of its own writes) and those that cannot
// be caught.
var forwarded = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGILL, unix.SIGTRAP, unix.SIGABRT, unix.SIGBUS,
	unix.SIGFPE, unix.SIGUSR1, unix.SIGSEGV, unix.SIGUSR2, unix.SIGALRM, unix.SIGTERM, unix.SIGSTKFLT,
	unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGVTALRM,
	unix.SIGPROF, unix.SIGWINCH, unix.SIGIO, unix.SIGPWR, unix.SIGSYS,
}

// handle answers kiln start, kill, pause and resume.
func (v *VMM) handle(r ipc.Request) error {
	switch r.Op {
	case ipc.OpStart:
		return v.proc.Start(func() error {
			if len(r.Net) > 0 {
				if err := v.link.Send(contract.Control{Op: contract.ControlNetwork, Net: r.Net}); err != nil {
					return err
				}
			}
			if err := v.link.Send(contract.Control{Op: contract.ControlStart}); err != nil {
				return err
			}
			if v.terminal {
				v.resize()
			}
			return nil
		})
	case ipc.OpSignal:
		return v.proc.Send(Signal{Sig: unix.Signal(r.Signal), All: r.All})
	case ipc.OpCheckpoint:
		return v.checkpoint(r.Dir, r.LeaveRunning)
	case ipc.OpPause:
		return v.vm.Freeze()
	case ipc.OpResume:
		return v.vm.Resume()
	}
	return fmt.Errorf("unknown request %q", r.Op)
}

// follow hears the guest's init report the process's start and exit.
func (v *VMM) follow() {
	for {
		select {
		case m := <-v.link.Messages():
			switch m.Op {
			case contract.ControlQuiesced, contract.ControlRestored:
				select {
				case v.ckpt <- m: // checkpoint.go waits for it
				default:
				}
			case contract.ControlStarted:
				v.guestPid.Store(int64(m.Pid))
				v.marks.Mark(StepStarted, m.Took)
				if err := v.proc.Started(); err != nil {
					fmt.Fprintf(v.Options.Stderr, "kiln: %v\n", err)
				}
				// Start-up is over: its pages go (machine.TrimStartup).
				if t, ok := v.vm.(interface{ TrimStartup() }); ok {
					t.TrimStartup()
				}
			case contract.ControlExited:
				v.marks.Mark(StepExited, nil)
				v.proc.Exited()
			case contract.ControlExecStarted, contract.ControlExecExited:
				v.execs.deliver(m)
			}
		case <-v.ended:
			return
		}
	}
}

// relay forwards the signals this process receives.
func (v *VMM) relay(sigs <-chan os.Signal) {
	for s := range sigs {
		if v.finished.Load() {
			return
		}
		sig := s.(syscall.Signal)
		if sig == unix.SIGWINCH && v.terminal {
			v.resize() // the guest's terminal exists from the setup on
			continue
		}
		v.proc.Send(Signal{Sig: sig})
	}
}

// resize sends the size of the container's terminal (the VMM's stdin,
// the slave of the engine's terminal) to the guest's.
func (v *VMM) resize() {
	if rows, cols, ok := terminalSize(v.Stdin); ok {
		v.link.Send(contract.Control{Op: contract.ControlWinsize, Rows: rows, Cols: cols})
	}
}

// terminalSize is the size of the terminal r is, if it is one and its
// size is set.
func terminalSize(r io.Reader) (rows, cols uint16, ok bool) {
	f, isFile := r.(*os.File)
	if !isFile {
		return 0, 0, false
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return 0, 0, false
	}
	return ws.Row, ws.Col, true
}

// exit is how the container ended.
func (v *VMM) exit() Exit {
	if v.checkpointed.Load() {
		return Exit{Status: checkpointedStatus, HasStatus: true, Result: v.res}
	}
	if sig := v.stopSig.Load(); sig != 0 {
		return Exit{Status: 128 + int(sig), HasStatus: true, Result: v.res}
	}
	if v.res.Reason == machine.ReasonReset && v.res.HasStatus {
		return Exit{Status: v.res.ExitStatus, HasStatus: true, Result: v.res}
	}
	return Exit{Result: v.res}
}

// capped writes to w until left bytes are written, then discards: the
// guest's console log cannot fill the state directory.
type capped struct {
	w    io.Writer
	left int
}

func (c *capped) Write(p []byte) (int, error) {
	if c.left > 0 {
		n := min(len(p), c.left)
		c.w.Write(p[:n])
		c.left -= n
	}
	return len(p), nil
}
