package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// The VMM process of a container (`kiln _oci-vmm STATEDIR`, started by
// kiln create): the host process that is the container. Its stdio are the
// container's; its pid is in the engine's pid file; it exits with the
// container process's exit status (128+N if a signal N ended it), which
// the engine reads as the container's.
//
//  1. It listens for the guest's control and stdio connections
//     (oci.Link), builds the VM from the warm snapshot (ociwarm.go) with
//     the container as the job, and runs it: the guest's init sets the
//     container up and reports ready.
//  2. It serves kiln start and kill on its control socket, says "ok" to
//     kiln create on fd 3, and from then on lives on its own.
//  3. kiln start: the guest's init runs the process, and reports it
//     started once its exec succeeded. A signal, from kiln kill or sent
//     to this process directly (conmon relays SIGTERM and SIGINT so),
//     goes to the process in the guest; oci.Process holds it until the
//     process exists, and before the start a signal that would end a
//     process ends the VM instead. SIGKILL cannot be caught: kiln kill
//     sends it here, and the VM ends with this process.
//  4. When the process exits, the guest's init reports its status and
//     resets the VM; this process copies the last of its output and
//     exits with that status.

// readyTimeout bounds the guest's setup of a container after the VM
// starts: a cold boot for the snapshot comes before it, not in it.
const readyTimeout = 5 * time.Minute

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

// init keeps a VMM's main goroutine on the process's main thread. kiln
// create starts the VMM with a parent-death signal, so that it dies with a
// create that dies; the signal belongs to the thread that exec'd (threads
// made later have none), and the VMM clears it there once created.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "_oci-vmm" {
		runtime.LockOSThread()
	}
}

// cmdOCIVMM runs a container's VMM; it reports to kiln create on fd 3.
func cmdOCIVMM(args []string) int {
	fs := pflag.NewFlagSet("_oci-vmm", pflag.ContinueOnError)
	kernel := fs.String("kernel", "", "")
	initrd := fs.String("initrd", "", "")
	noSeccomp := fs.Bool("no-seccomp", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "kiln: _oci-vmm is started by kiln create")
		return ExitUsage
	}
	report := os.NewFile(3, "create")
	v := &containerVM{dir: fs.Arg(0), kernel: *kernel, initrd: *initrd, seccomp: seccomp.On}
	if *noSeccomp {
		v.seccomp = seccomp.Off
	} else if os.Getenv("KILN_SECCOMP") == "log" {
		v.seccomp = seccomp.Log
	}
	code, err := v.run(report)
	if err != nil {
		if report != nil {
			fmt.Fprintf(report, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			report.Close()
		}
		return 1
	}
	return code
}

// containerVM is the VMM of one container.
type containerVM struct {
	dir, kernel, initrd string
	terminal            bool
	seccomp             seccomp.Mode // the filters the VM runs under (vmm/seccomp)

	m    *machine.Machine
	link *oci.Link
	proc *oci.Process // the container's process, and the signals for it

	stopSig  atomic.Int32 // the signal that ended a container before its start
	finished atomic.Bool
}

// run builds and runs the VM. An error is one before the container was
// created, for kiln create; after, the exit code says how it ended.
func (v *containerVM) run(report *os.File) (int, error) {
	start := time.Now()
	c := &oci.Container{Dir: v.dir}
	plan, err := oci.LoadPlan(c.PlanPath())
	if err != nil {
		return 0, err
	}
	v.terminal = plan.Container.Terminal
	if v.link, err = oci.Listen(c.VsockPath(), oci.ControlPort, v.terminal); err != nil {
		return 0, err
	}
	defer v.link.Close()
	console, err := os.OpenFile(c.ConsolePath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("the guest's console: %w", err)
	}
	defer console.Close()
	cfg := oci.ShapeConfig(v.kernel, v.initrd, plan.Shares, c.VsockPath())
	cfg.Container = &plan.Container
	v.m, err = ociMachine(cfg, machine.Options{Console: &capped{w: console, left: 1 << 20}, Start: start, KVMPath: os.Getenv("KILN_KVM"), Seccomp: v.seccomp})
	if err != nil {
		return 0, err
	}
	defer v.m.Close()
	// The control socket is made now: once the VM runs, kiln's seccomp
	// filter lets this process accept connections, not make sockets.
	ln, err := net.Listen("unix", c.ControlPath())
	if err != nil {
		return 0, fmt.Errorf("the VMM's control socket: %w", err)
	}
	defer ln.Close()
	v.link.Stdio(os.Stdin, os.Stdout, os.Stderr)
	ended := make(chan struct{})
	var res machine.Result
	go func() {
		res = v.m.Run()
		close(ended)
	}()
	if err := v.link.Ready(ended, v.m.CommandStarted(), readyTimeout); err != nil {
		v.m.Stop()
		<-ended
		return 0, err
	}
	v.proc = &oci.Process{
		Deliver: func(s oci.Signal) error {
			return v.link.Send(contract.Control{Op: contract.ControlSignal, Signal: int(s.Sig), All: s.All})
		},
		End: func(sig unix.Signal) {
			v.stopSig.CompareAndSwap(0, int32(sig))
			v.m.Stop()
		},
	}
	go v.follow(ended)
	go oci.Serve(ln, v.handle)
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE) // a closed stdout is an error, not death
	go v.relay(sigs)

	// Created: from here on the VMM outlives kiln create (this is the
	// main thread, see init).
	unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0)
	if _, err := fmt.Fprintln(report, "ok"); err != nil {
		v.m.Stop() // kiln create is gone
	}
	report.Close()

	<-ended
	v.proc.Exited()
	v.finished.Store(true)
	signal.Stop(sigs)
	v.m.Close() // closes the guest's connections: the copies end
	v.link.WaitOutput(10 * time.Second)
	return v.exitCode(res), nil
}

// handle answers kiln start and kill.
func (v *containerVM) handle(r oci.Request) error {
	switch r.Op {
	case "start":
		return v.proc.Start(func() error {
			if err := v.link.Send(contract.Control{Op: contract.ControlStart}); err != nil {
				return err
			}
			if v.terminal {
				v.resize()
			}
			return nil
		})
	case "signal":
		return v.proc.Send(oci.Signal{Sig: unix.Signal(r.Signal), All: r.All})
	}
	return fmt.Errorf("unknown request %q", r.Op)
}

// follow hears the guest's init report the process's start and exit.
func (v *containerVM) follow(ended <-chan struct{}) {
	for {
		select {
		case m := <-v.link.Messages():
			switch m.Op {
			case contract.ControlStarted:
				if err := v.proc.Started(); err != nil {
					fmt.Fprintf(os.Stderr, "kiln: %v\n", err)
				}
			case contract.ControlExited:
				v.proc.Exited()
			}
		case <-ended:
			return
		}
	}
}

// relay forwards the signals this process receives.
func (v *containerVM) relay(sigs <-chan os.Signal) {
	for s := range sigs {
		if v.finished.Load() {
			return
		}
		sig := s.(syscall.Signal)
		if sig == unix.SIGWINCH && v.terminal {
			v.resize() // the guest's terminal exists from the setup on
			continue
		}
		v.proc.Send(oci.Signal{Sig: sig})
	}
}

// resize sends the host terminal's size to the guest's.
func (v *containerVM) resize() {
	ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return
	}
	v.link.Send(contract.Control{Op: contract.ControlWinsize, Rows: ws.Row, Cols: ws.Col})
}

// exitCode is the container's exit status, or kiln's code for a VM that
// failed.
func (v *containerVM) exitCode(res machine.Result) int {
	if sig := v.stopSig.Load(); sig != 0 {
		return 128 + int(sig)
	}
	switch res.Reason {
	case machine.ReasonError:
		return fail(res.Err)
	case machine.ReasonShutdown:
		fmt.Fprintf(os.Stderr, "kiln: the container's VM crashed: %v\n", res.Err)
		return ExitGuestCrash
	case machine.ReasonReset:
		if res.HasStatus {
			return res.ExitStatus
		}
	}
	fmt.Fprintf(os.Stderr, "kiln: the container's VM ended (%v) before its process reported an exit status\n", res.Reason)
	return ExitGuestCrash
}

// capped writes to w until left bytes are written, then discards: the
// guest's console log cannot fill the state directory.
type capped struct {
	w    *os.File
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
