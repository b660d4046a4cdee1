package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
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
	if cfg.Verbose {
		console = os.Stderr
	}
	fmt.Fprintf(os.Stderr, "kiln: booting the guest to snapshot it (a cold boot: %s)\n", bootEstimate())
	res, err := takeSnapshot(cfg, opt.out, console, start, opt.seccomp)
	if err != nil {
		return sub.fail(err)
	}
	res.print(os.Stderr, opt.out)
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
	sub := newSubcommand("snapshot", "Usage: kiln snapshot --out DIR [flags]\n\n"+
		"Boots a Linux guest with the flags kiln run takes, pauses it when its init\n"+
		"is ready to run a command, and writes every vCPU's registers, the devices'\n"+
		"state and the guest's memory to DIR. kiln run --restore DIR [-- COMMAND]\n"+
		"then starts VMs from that moment. A network device cannot be snapshotted.")
	opt := &snapshotOptions{cfg: &config.Config{}}
	sub.fs.StringVar(&opt.out, "out", "", "write the snapshot to `DIR` (created; an existing snapshot there is replaced)")
	sub.fs.StringVar(&opt.verify, "verify", "", "check the snapshot in `DIR` against its checksums (its state and all of its memory), and exit")
	vm := addVMFlags(sub.fs, opt.cfg)
	if helped, err := sub.parse(args); helped || err != nil {
		return nil, sub, helped, err
	}
	if opt.verify != "" {
		return opt, sub, false, nil
	}
	if opt.out == "" {
		return nil, sub, false, fmt.Errorf("%w: kiln snapshot needs --out DIR (or --verify DIR)", config.ErrUsage)
	}
	cmd, err := command(sub.fs)
	if err != nil {
		return nil, sub, false, err
	}
	if len(cmd) > 0 {
		return nil, sub, false, fmt.Errorf("%w: a snapshot is taken before any command runs; give the command to kiln run --restore DIR -- COMMAND", config.ErrUsage)
	}
	if err := vm.parse(); err != nil {
		return nil, sub, false, err
	}
	opt.seccomp = vm.seccomp()
	return opt, sub, false, nil
}

// bootEstimate says how long a cold boot takes on this host.
func bootEstimate() string {
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return "tens of seconds on this kvm-pvm host"
	}
	return "about a second"
}

// snapshotResult is where the time of taking a snapshot went.
type snapshotResult struct {
	phases machine.Phases
	paused time.Time
	times  machine.SnapshotTimes
	end    time.Time
}

// takeSnapshot boots cfg's VM until its init is ready and writes it to dir.
func takeSnapshot(cfg *config.Config, dir string, out io.Writer, start time.Time, mode seccomp.Mode) (*snapshotResult, error) {
	cfg.Snapshot = true
	if err := machine.CheckSnapshottable(cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// What needs reading and making before the filters go on: the build
	// of this binary, which the snapshot records, and dir's parent.
	build, err := buildID()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	opt := machine.Options{Console: out, Start: start, KVMPath: os.Getenv("KILN_KVM"), SnapshotAtReady: true, Seccomp: mode}
	if cfg.Verbose {
		opt.Verbose = os.Stderr
	}
	m, err := machine.New(cfg, opt)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	// The VM pauses itself when its init is ready; it is saved while it
	// waits, then stopped.
	ran := make(chan machine.Result, 1)
	go func() { ran <- m.Run() }()
	select {
	case <-m.PausedAtReady():
	case res := <-ran:
		switch res.Reason {
		case machine.ReasonError:
			return nil, res.Err
		case machine.ReasonShutdown:
			return nil, fmt.Errorf("%w: the guest crashed before it was ready: %v", machine.ErrGuestCrash, res.Err)
		default:
			return nil, fmt.Errorf("%w: the guest ended (%v) before its init was ready for a job: is the initramfs kiln's? (run with -v to see the kernel log)", machine.ErrGuestCrash, res.Reason)
		}
	}
	r := &snapshotResult{paused: time.Now()}
	r.times, err = m.SaveSnapshot(dir, build)
	r.end = time.Now()
	m.Stop()
	res := <-ran
	r.phases = res.Phases
	r.phases.End = r.paused // the boot's end: the pause
	if err != nil {
		return nil, err
	}
	return r, nil
}

// print says where the time went and how big the snapshot is.
func (r *snapshotResult) print(w io.Writer, dir string) {
	p := r.phases
	fmt.Fprintf(w, "kiln: booted to a ready init in %s (VMM setup %s, kernel %s, init %s)\n",
		secs(p.End.Sub(p.Start)), secs(p.FirstRun.Sub(p.Start)), secs(p.Userspace.Sub(p.FirstRun)), secs(p.End.Sub(p.Userspace)))
	t := r.times
	fmt.Fprintf(w, "kiln: paused; saved vCPUs, devices and the VM in %s, %s of %s of RAM in %s\n",
		secs(t.Devices), mib(t.Written), mib(t.MemTotal), secs(t.Memory))
	var mem, state unix.Stat_t
	_ = unix.Stat(filepath.Join(dir, machine.MemoryFile), &mem)
	_ = unix.Stat(filepath.Join(dir, machine.StateFile), &state)
	fmt.Fprintf(w, "kiln: snapshot %s: %s of memory (%s on disk) and %s of state, in %s in all\n",
		dir, mib(uint64(mem.Size)), mib(uint64(mem.Blocks)*512), kib(uint64(state.Size)), secs(r.end.Sub(p.Start)))
}

func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
func kib(n uint64) string { return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10)) }

// buildID names this kiln binary: a hash of its contents. A snapshot
// records it, and a warm snapshot is only used by the kiln that took it:
// another build may lay out device state differently.
var buildID = sync.OnceValues(func() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the kiln binary: %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("read the kiln binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read the kiln binary: %w", err)
	}
	return version + "-" + hex.EncodeToString(h.Sum(nil))[:16], nil
})
