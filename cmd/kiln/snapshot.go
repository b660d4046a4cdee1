package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/cmd/kiln/vmflags"
	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/ipc"
	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
	"github.com/kiln-vmm/kiln/vmm/warm"
)

// cmdSnapshot is kiln snapshot: boot a VM, pause it when its init is
// ready for a job, and write it to a directory that kiln run --restore
// starts VMs from.
func cmdSnapshot(args []string, start time.Time) int {
	opt, sub, helped, err := snapshotFlags(args)
	if helped {
		return 0
	}
	if err != nil {
		return sub.fail(err)
	}
	if opt.verify != "" {
		if err := machine.VerifyMemory(opt.verify); err != nil {
			return sub.fail(err)
		}
		fmt.Fprintf(os.Stderr, "kiln: snapshot %s: its state and memory match their checksums\n", opt.verify)
		return 0
	}
	cfg := opt.cfg
	console := io.Discard
	if cfg.Verbose || cfg.Ready != nil {
		// A ready-app snapshot's app says what it does on the console.
		console = os.Stderr
	}
	fmt.Fprintf(os.Stderr, "kiln: booting the guest to snapshot it (a cold boot: %s)\n", bootEstimate())
	res, err := takeSnapshot(cfg, opt.out, console, start, opt.seccomp)
	if err != nil {
		return sub.fail(err)
	}
	printTaken(os.Stderr, res, opt.out)
	if cfg.Ready != nil {
		p := res.Phases
		fmt.Fprintf(os.Stderr, "kiln: the app (%s) was ready (%v) %s after it started; kiln run --restore %s resumes it\n",
			cfg.Command[0], cfg.Ready, secs(p.End.Sub(p.Running)), opt.out)
	}
	return 0
}

// snapshotOptions are kiln snapshot's flags.
type snapshotOptions struct {
	cfg     *config.Config
	out     string // --out DIR
	verify  string // --verify DIR
	seccomp seccomp.Mode
}

// snapshotFlags parses `kiln snapshot` arguments.
func snapshotFlags(args []string) (*snapshotOptions, *subcommand, bool, error) {
	sub := newSubcommand("snapshot", "Usage: kiln snapshot --out DIR [flags]\n"+
		"       kiln snapshot --out DIR --ready-port PORT|--ready-file PATH|--ready-after D [flags] -- APP [ARG...]\n\n"+
		"Boots a Linux guest with the flags kiln run takes, pauses it when its init\n"+
		"is ready to run a command, and writes every vCPU's registers, the devices'\n"+
		"state and the guest's memory to DIR. kiln run --restore DIR [-- COMMAND]\n"+
		"then starts VMs from that moment. With a ready condition, init starts APP\n"+
		"first and the VM is paused once APP is ready, APP included: kiln run\n"+
		"--restore DIR then resumes it. A network device's tap is only the\n"+
		"snapshot's: each VM restored from it gives the device its own with\n"+
		"--net tap=NAME[,mac=MAC][,ip=ADDR/PREFIX][,gw=ADDR].")
	opt := &snapshotOptions{cfg: &config.Config{}}
	sub.fs.StringVar(&opt.out, "out", "", "write the snapshot to `DIR` (created; an existing snapshot there is replaced)")
	sub.fs.StringVar(&opt.verify, "verify", "", "check the snapshot in `DIR` against its checksums (its state and all of its memory), and exit")
	var ready contract.Ready
	sub.fs.IntVar(&ready.Port, "ready-port", 0, "snapshot APP once a TCP socket in the guest listens on `PORT`")
	sub.fs.StringVar(&ready.File, "ready-file", "", "snapshot APP once `PATH` exists in the guest")
	sub.fs.DurationVar(&ready.After, "ready-after", 0, "snapshot APP this long (`DURATION`) after it started")
	sub.fs.DurationVar(&opt.cfg.ReadyTimeout, "ready-timeout", machine.DefaultReadyTimeout, "give up on APP if it is not ready this long after it started")
	vm := vmflags.Add(sub.fs, opt.cfg)
	if helped, err := sub.parse(args); helped || err != nil {
		return nil, sub, helped, err
	}
	if opt.verify != "" {
		return opt, sub, false, nil
	}
	if opt.out == "" {
		return nil, sub, false, fmt.Errorf("%w: kiln snapshot needs --out DIR (or --verify DIR)", config.ErrUsage)
	}
	cmd, err := vmflags.Command(sub.fs)
	if err != nil {
		return nil, sub, false, err
	}
	opt.cfg.Command = cmd
	if vmflags.Changed(sub.fs, []string{"ready-port", "ready-file", "ready-after"}) != "" {
		opt.cfg.Ready = &ready
	}
	if err := vm.Parse(); err != nil {
		return nil, sub, false, err
	}
	if err := machine.CheckSnapshottable(opt.cfg); err != nil {
		return nil, sub, false, err
	}
	for _, n := range opt.cfg.Nets {
		if n.IP != "" || n.Gateway != "" {
			return nil, sub, false, fmt.Errorf("%w: --net %s: ip= and gw= are each restored VM's own; give them to kiln run --restore DIR --net tap=NAME,ip=ADDR/PREFIX", config.ErrUsage, n.Tap)
		}
	}
	opt.seccomp = vm.Seccomp()
	return opt, sub, false, nil
}

// bootEstimate says how long a cold boot takes on this host.
func bootEstimate() string {
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return "tens of seconds on this kvm-pvm host"
	}
	return "about a second"
}

// takeSnapshot boots cfg's VM until its init is ready and writes it to
// dir, under the filters mode asks for.
func takeSnapshot(cfg *config.Config, dir string, console io.Writer, start time.Time, mode seccomp.Mode) (*machine.TakeReport, error) {
	opt := machine.Options{Console: console, Start: start, KVMPath: os.Getenv("KILN_KVM"), Seccomp: mode, Stderr: os.Stderr}
	if cfg.Verbose {
		opt.Verbose = os.Stderr
	}
	return machine.TakeSnapshot(cfg, dir, opt)
}

// cmdSnapshotChild is `kiln _snapshot`, a warm snapshot's child (vmm/warm):
// the request on stdin, the reply on fd 3, what it does on stderr.
func cmdSnapshotChild(start time.Time) int {
	reply := os.NewFile(3, "reply")
	var req ipc.SnapshotRequest
	if err := ipc.Read(os.Stdin, &req); err != nil {
		fmt.Fprintf(os.Stderr, "kiln: %s is started by kiln itself: %v\n", warm.SnapshotCommand, err)
		return ExitUsage
	}
	cfg := &config.Config{Shape: req.Shape, Verbose: req.Verbose}
	console := io.Discard
	if req.Verbose {
		console = os.Stderr
	}
	fmt.Fprintf(os.Stderr, "kiln: booting the guest to snapshot it (a cold boot: %s)\n", bootEstimate())
	res, err := takeSnapshot(cfg, req.Dir, console, start, req.Seccomp)
	var r ipc.SnapshotReply
	code := 0
	if err != nil {
		code = exitCode(err)
		r = ipc.SnapshotReply{Error: err.Error(), Code: code}
	} else {
		printTaken(os.Stderr, res, req.Dir)
	}
	if err := ipc.Write(reply, r); err != nil {
		fmt.Fprintf(os.Stderr, "kiln: %v\n", err)
	}
	return code
}

// printTaken says where the time went and how big the snapshot is.
func printTaken(w io.Writer, r *machine.TakeReport, dir string) {
	p := r.Phases
	fmt.Fprintf(w, "kiln: booted to a ready init in %s (VMM setup %s, kernel %s, init %s)\n",
		secs(p.End.Sub(p.Start)), secs(p.FirstRun.Sub(p.Start)), secs(p.Userspace.Sub(p.FirstRun)), secs(p.End.Sub(p.Userspace)))
	t := r.Times
	fmt.Fprintf(w, "kiln: paused; saved vCPUs, devices and the VM in %s, %s of %s of RAM in %s\n",
		secs(t.Devices), mib(t.Written), mib(t.MemTotal), secs(t.Memory))
	var mem, state unix.Stat_t
	_ = unix.Stat(filepath.Join(dir, machine.MemoryFile), &mem)
	_ = unix.Stat(filepath.Join(dir, machine.StateFile), &state)
	fmt.Fprintf(w, "kiln: snapshot %s: %s of memory (%s on disk) and %s of state, in %s in all\n",
		dir, mib(uint64(mem.Size)), mib(uint64(mem.Blocks)*512), kib(uint64(state.Size)), secs(r.End.Sub(p.Start)))
}

func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
func kib(n uint64) string { return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10)) }
