package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-vmm/kiln/boot"
	"github.com/kiln-vmm/kiln/cmd/kiln/vmflags"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/console"
	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
	"github.com/kiln-vmm/kiln/vmm/warm"
)

// runFlags parses `kiln run` arguments into a config.
func runFlags(args []string) (*runOptions, bool, error) {
	sub := newSubcommand("run", "Usage: kiln run [flags] [-- COMMAND [ARG...]]\n\n"+
		"Boots a Linux guest, or restores one from a snapshot (--restore, --warm).\n"+
		"With COMMAND, runs it in the guest and exits with its status; without,\n"+
		"starts an interactive shell (Ctrl-A X quits).")
	fs := sub.fs
	cfg := &config.Config{}
	opt := &runOptions{cfg: cfg}
	vm := vmflags.Add(fs, cfg)
	fs.StringVar(&opt.restore, "restore", "", "start the VM from the snapshot in `DIR` (kiln snapshot) instead of booting it")
	fs.BoolVar(&opt.warm, "warm", false, "start the VM from a cached snapshot of it, taken on first use (in $KILN_CACHE/snapshots)")
	bootTime := fs.Bool("boot-time", false, "print the time from launch to guest user space")
	fs.BoolVar(&cfg.PrintCmdline, "print-cmdline", false, "print the kernel command line for this guest under another VMM (with the job that kiln hands over its signal device), and exit")
	fs.StringVar(&opt.report, "report", "", "write a machine-readable report to `PATH`: a JSON object a line for user space, the command's start, and the end (boot phases, exit status, exit counts with --stats)")
	addObserveFlags(fs, cfg)
	if helped, err := sub.parse(args); helped || err != nil {
		return nil, helped, err
	}
	var err error
	if cfg.Command, err = vmflags.Command(fs); err != nil {
		return nil, false, err
	}
	if err := vm.Parse(); err != nil {
		return nil, false, err
	}
	if opt.restore != "" {
		if opt.warm {
			return nil, false, fmt.Errorf("%w: --restore and --warm both choose the snapshot; give one", config.ErrUsage)
		}
		if f := vmflags.Changed(fs, vmflags.Hardware); f != "" {
			return nil, false, fmt.Errorf("%w: --%s is fixed by the snapshot; it cannot be changed with --restore", config.ErrUsage, f)
		}
		if cfg.PrintCmdline {
			return nil, false, fmt.Errorf("%w: --print-cmdline describes a boot, not a restore", config.ErrUsage)
		}
	}
	cfg.BootTime = *bootTime
	opt.seccomp = vm.Seccomp()
	return opt, false, nil
}

// warmStart restores cfg's VM from the warm snapshot of its shape, taking
// the snapshot first (in a kiln _snapshot child, which says on stderr what
// it does) if there is none that can be used.
func warmStart(cfg *config.Config, opt machine.Options) (*machine.Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	child, err := warm.NewChild(os.Stderr, opt.Seccomp, cfg.Verbose)
	if err != nil {
		return nil, err
	}
	take := func(s config.Shape, dir string) error {
		fmt.Fprintf(os.Stderr, "kiln: no warm snapshot of this VM yet: taking one (kiln snapshot), then restoring it\n")
		return child.Take(s, dir)
	}
	retake := func(dir string, why error) {
		fmt.Fprintf(os.Stderr, "kiln: warm snapshot %s: %v; taking it again\n", dir, why)
	}
	return warm.DefaultCache().Start(cfg, opt, take, retake)
}

// runOptions are kiln run's flags: the VM, where it comes from, and what
// kiln reports about it.
type runOptions struct {
	cfg     *config.Config
	report  string // --report PATH
	restore string // --restore DIR
	warm    bool   // --warm
	seccomp seccomp.Mode
}

func cmdRun(args []string, start time.Time) int {
	opt, helped, err := runFlags(args)
	if helped {
		return 0
	}
	if err != nil {
		return fail(err)
	}
	cfg := opt.cfg
	cfg.Interactive = console.IsTerminal(os.Stdin) && console.IsTerminal(os.Stdout)
	if opt.restore == "" {
		if err := cfg.Validate(); err != nil {
			return fail(err)
		}
	}

	out := console.NewWriter(os.Stdout)
	// KILN_KVM names another KVM device; tests use it to check the error
	// for a missing /dev/kvm.
	mopt := machine.Options{Console: out, Start: start, KVMPath: os.Getenv("KILN_KVM"), Seccomp: opt.seccomp, Stderr: os.Stderr}
	if cfg.Verbose {
		mopt.Verbose = os.Stderr
	}
	var m *machine.Machine
	switch {
	case opt.restore != "":
		m, err = machine.Restore(opt.restore, cfg, mopt)
	case opt.warm:
		m, err = warmStart(cfg, mopt)
	default:
		m, err = machine.New(cfg, mopt)
	}
	if err != nil {
		out.Close()
		return fail(err)
	}
	defer m.Close()
	if cfg.PrintCmdline {
		out.Close()
		line, err := m.ForeignCmdline()
		if err != nil {
			return fail(err)
		}
		fmt.Println(line)
		return 0
	}
	rep, err := machine.OpenReport(opt.report, start)
	if err != nil {
		out.Close()
		return fail(err)
	}
	if m.Host().PVM {
		fmt.Fprintf(os.Stderr, "kiln: host KVM is kvm-pvm (software nested virtualization): guest CPUID without CX16, XSAVE and KVM PV hypercalls; kernel command line adds clearcpuid, tsc_early_khz=%d, rodata=off, and GODEBUG and GLIBC_TUNABLES that keep guest programs off AVX (docs/pvm.md)\n", m.Host().TSCKHz)
	}
	code := runVM(m, cfg, start, rep, out)
	if err := rep.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "kiln: %v\n", err)
	}
	return code
}

// runVM runs a built VM with the terminal, signals and reports around it,
// and returns kiln's exit code.
func runVM(m *machine.Machine, cfg *config.Config, start time.Time, rep *machine.Reporter, out *console.Writer) int {
	var term *console.Terminal
	if cfg.Interactive {
		var err error
		if term, err = console.MakeRaw(os.Stdin); err != nil {
			out.Close()
			return fail(fmt.Errorf("set terminal raw mode: %w", err))
		}
		defer term.Restore()
	}
	go console.Pump(os.Stdin, m.Serial(), cfg.Interactive, m.Stop, m.InputReady())
	// A vCPU held by console output nobody reads must not hold up the
	// end of the VM.
	go func() { <-m.Ending(); out.Release() }()

	vmEnded := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	interrupted := false
	go func() {
		if _, ok := <-sigs; ok {
			interrupted = true
			m.Stop()
		}
	}()
	rep.Watch(m, vmEnded)

	// The boot time is printed the moment it is known, so that a person
	// watching sees it while the guest runs.
	bootTimeDone := make(chan struct{})
	if cfg.BootTime {
		go func() {
			defer close(bootTimeDone)
			select {
			case <-m.UserspaceReached():
			case <-vmEnded:
				select {
				case <-m.UserspaceReached():
				default:
					return
				}
			}
			fmt.Fprintf(os.Stderr, "kiln: boot time (launch to guest user space): %.3f s\n", time.Since(start).Seconds())
		}()
	} else {
		close(bootTimeDone)
	}
	res := m.Run()
	close(vmEnded)
	<-bootTimeDone
	signal.Stop(sigs)
	out.Close()
	term.Restore()
	if n := out.Dropped(); n > 0 {
		fmt.Fprintf(os.Stderr, "kiln: %d bytes of the guest's console output were dropped: nobody read kiln's output as the VM stopped\n", n)
	}
	if cfg.Interactive {
		fmt.Fprint(os.Stderr, "\r\n")
	}
	if cfg.BootTime && !res.HasBootTime {
		fmt.Fprintln(os.Stderr, "kiln: boot time: the guest never reported reaching user space")
	}
	reportObserve(cfg, m, res)
	code := resultCode(cfg, res, interrupted)
	rep.End(m, res, code)
	return code
}

// resultCode turns how the VM ended into kiln's exit code.
func resultCode(cfg *config.Config, res machine.Result, interrupted bool) int {
	switch res.Reason {
	case machine.ReasonError:
		return fail(res.Err)
	case machine.ReasonShutdown:
		fmt.Fprintf(os.Stderr, "kiln: guest crashed: %v\n", res.Err)
		return ExitGuestCrash
	case machine.ReasonStopped:
		if interrupted {
			return ExitInterrupted
		}
		return 0
	}
	// A reset: the guest rebooted or powered off.
	if res.HasStatus {
		return res.ExitStatus
	}
	if len(cfg.Command) > 0 {
		fmt.Fprintln(os.Stderr, "kiln: guest crashed: it reset before its command reported an exit status (kernel panic or init failure; run with -v to see the kernel log)")
		return ExitGuestCrash
	}
	return 0
}

// fail prints err as one line and returns its exit code, for kiln run.
func fail(err error) int { return failIn("run", err) }

// failIn prints err as one line and returns its exit code; a usage error
// adds a line pointing at `kiln CMD --help`. The VMM core names settings
// ("cpus"); here they become the flags that set them.
func failIn(cmd string, err error) int {
	msg := err.Error()
	var se *config.SettingError
	if errors.As(err, &se) {
		msg = "--" + se.Error()
	}
	if errors.Is(err, boot.ErrTooBig) {
		msg += " (raise --memory)"
	}
	msg = strings.TrimPrefix(msg, config.ErrUsage.Error()+": ")
	fmt.Fprintf(os.Stderr, "kiln: %s\n", msg)
	if errors.Is(err, config.ErrUsage) {
		fmt.Fprintf(os.Stderr, "kiln: see kiln %s --help\n", cmd)
	}
	return exitCode(err)
}
