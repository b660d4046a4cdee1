package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/trace"
)

// Usage is kiln bench's usage text.
const Usage = "Usage: kiln bench [flags] [-- COMMAND [ARG...]]\n\n" +
	"Starts the same workload (COMMAND, default true) as a kiln microVM, a kiln\n" +
	"microVM restored from a snapshot, a QEMU microvm, with crun, with runc, with\n" +
	"unshare and chroot, and by fork/exec, interleaved for --rounds rounds after\n" +
	"--warmup, and reports min, median, p90 and max of launch → user space (VMs)\n" +
	"and launch → exit, memory, density, and whether kiln meets its goals.\n" +
	"With --workload http, the image's httpd is served instead by podman and ctr\n" +
	"(runc and kiln), kiln run --net and kiln run --restore: launch → ready and\n" +
	"→ first HTTP 200, a burst's latency and rate, memory, density, teardown.\n" +
	"Methods that cannot run say why."

// Options are the benchmark's settings.
type Options struct {
	Kiln    string   // the kiln binary to start
	Kernel  string   // guest kernel (vmlinux)
	Initrd  string   // initramfs, also unpacked as the containers' root
	Memory  uint64   // guest memory in bytes
	Command []string // the workload
	Rounds  int      // measured rounds
	Warmup  int      // rounds run first and not counted
	Density []int    // numbers of VMs to start at once
	// RestoreDensity are numbers of VMs to restore at once from one
	// snapshot.
	RestoreDensity []int
	Only           []string // method names to run; all if empty
	Timeout        time.Duration
	// Workload "http" is the REST-API benchmark (http.go): the image's
	// httpd served by each method, Burst its load; "" starts Command to
	// its exit.
	Workload string
	Burst    BurstSpec
	Host     Host
	Progress io.Writer // progress lines; nil for none
}

// KilnError is kiln refusing the benchmark's settings (a missing kernel,
// no KVM, ...) with its message and exit code.
type KilnError struct {
	Code int
	Msg  string
}

func (e *KilnError) Error() string { return e.Msg }

// runner is a method and the function that starts it once.
type runner struct {
	Method
	run     func(ctx context.Context) Sample
	cleanup func()
}

// bench is one run of the benchmark.
type bench struct {
	opt      Options
	cmdline  string // kiln's guest command line, given to QEMU too
	work     string // scratch directory (the container bundle)
	snapshot string // the snapshot kiln-restore restores; "" if none
	res      *Results
}

// Run runs the benchmark: every available method interleaved for the
// warm-up and measured rounds, then the density runs, and returns all the
// samples with the goals checked. A method that cannot run is reported as
// unavailable with the reason, not dropped.
func Run(ctx context.Context, opt Options) (*Results, error) {
	b := &bench{opt: opt}
	res := &Results{Host: opt.Host, Started: time.Now(), Settings: Settings{
		Rounds: opt.Rounds, Warmup: opt.Warmup, Command: opt.Command,
		Kernel: opt.Kernel, Initrd: opt.Initrd, MemoryMB: opt.Memory >> 20,
	}}
	cl, err := b.kilnCmdline()
	if err != nil {
		return nil, err
	}
	b.cmdline, res.Settings.Cmdline = cl, cl
	b.res = res
	work, err := os.MkdirTemp("", "kiln-bench-")
	if err != nil {
		return nil, fmt.Errorf("make a scratch directory: %w", err)
	}
	defer os.RemoveAll(work)
	b.work = work
	if b.opt.Kiln, err = privateCopy(opt.Kiln, work); err != nil {
		return nil, err
	}
	if opt.Workload == "http" {
		return b.runHTTP(ctx)
	}

	runners := b.runners()
	defer func() {
		for _, r := range runners {
			if r.cleanup != nil {
				r.cleanup()
			}
		}
	}()
	for _, r := range runners {
		if r.Unavailable != "" {
			b.progress("%s: unavailable: %s", r.Name, r.Unavailable)
		}
	}
	var active []int
	for i, r := range runners {
		if r.Unavailable == "" {
			active = append(active, i)
		}
	}
	slots := Schedule(len(active), opt.Warmup, opt.Rounds)
	for n, slot := range slots {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := &runners[active[slot.Method]]
		s := r.run(ctx)
		s.Round, s.Warmup = slot.Round, slot.Warmup
		r.Samples = append(r.Samples, s)
		b.progress("[%d/%d] round %d%s %s: %s", n+1, len(slots), slot.Round, warmTag(slot.Warmup), r.Name, describe(s))
	}
	for _, r := range runners {
		res.Methods = append(res.Methods, r.Method)
	}
	for _, k := range opt.Density {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !b.selected("kiln") {
			break
		}
		b.progress("density: starting %d kiln VMs at once", k)
		d := b.density(ctx, k, "")
		b.progress("density: %s", describeDensity(d))
		res.Density = append(res.Density, d)
	}
	for _, k := range opt.RestoreDensity {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if b.snapshot == "" {
			b.progress("restore density: no snapshot (the kiln-restore method did not run)")
			break
		}
		b.progress("density: restoring %d kiln VMs at once", k)
		d := b.density(ctx, k, b.snapshot)
		b.progress("density: %s", describeDensity(d))
		res.Density = append(res.Density, d)
	}
	res.Goals = CheckGoals(res)
	return res, nil
}

// httpRunners lists the HTTP workload's methods in the order they start
// in each round, those not selected left out.
func (b *bench) httpRunners(ctx context.Context) []httpRunner {
	all := append(b.httpEngineRunners(), b.httpKilnRunners()...)
	var out []httpRunner
	for _, r := range all {
		if !b.selected(r.Name) {
			if r.cleanup != nil {
				r.cleanup()
			}
			continue
		}
		if r.Unavailable == "" && r.start == nil {
			r.Unavailable = "not set up (an earlier step failed)"
		}
		out = append(out, r)
	}
	return out
}

// runners lists the methods in the order they start in each round.
func (b *bench) runners() []runner {
	all := []runner{b.kilnMethod(), b.kilnRestoreMethod(), b.qemuMethod()}
	all = append(all, b.containerMethods()...)
	all = append(all, b.engineMethods()...)
	var out []runner
	for _, r := range all {
		if b.selected(r.Name) {
			out = append(out, r)
		} else if r.cleanup != nil {
			r.cleanup()
		}
	}
	return out
}

// MethodNames are the methods kiln bench knows, in table order.
var MethodNames = []string{"kiln", "kiln-restore", "qemu-microvm", "crun", "runc", "unshare+chroot", "fork/exec",
	"podman+runc", "podman+kiln", "ctr+runc", "ctr+kiln"}

func (b *bench) selected(name string) bool {
	if len(b.opt.Only) == 0 {
		return true
	}
	for _, o := range b.opt.Only {
		if o == name {
			return true
		}
	}
	return false
}

// kilnCmdline asks kiln for the command line it would give the guest.
func (b *bench) kilnCmdline() (string, error) {
	args := []string{"run", "--print-cmdline", "--kernel", b.opt.Kernel, "--initrd", b.opt.Initrd,
		"--memory", fmt.Sprintf("%dM", b.opt.Memory>>20), "--cmdline", contract.ParamMark + "=" + Marker, "--"}
	out, err := exec.Command(b.opt.Kiln, append(args, b.opt.Command...)...).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		// kiln checked the kernel, initramfs and KVM and refused: pass its
		// own message and exit code on.
		return "", &KilnError{Code: ee.ExitCode(), Msg: strings.TrimSpace(string(ee.Stderr))}
	}
	if err != nil {
		return "", fmt.Errorf("ask kiln for the guest command line: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func (b *bench) progress(format string, args ...any) {
	if b.opt.Progress != nil {
		fmt.Fprintf(b.opt.Progress, "[bench] "+format+"\n", args...)
	}
}

func warmTag(w bool) string {
	if w {
		return " (warm-up)"
	}
	return ""
}

// describe is a sample in a progress line.
func describe(s Sample) string {
	if !s.OK() {
		return "failed: " + s.Err
	}
	var parts []string
	if s.Userspace > 0 {
		parts = append(parts, "user space "+FormatDuration(s.Userspace))
	}
	parts = append(parts, "exit "+FormatDuration(s.Exit))
	if m := s.Memory; m != nil {
		if m.Guest > 0 {
			parts = append(parts, fmt.Sprintf("overhead %s (guest touched %s)", FormatKiB(m.Overhead), FormatKiB(m.Guest)))
		} else if m.PeakRSS > 0 {
			parts = append(parts, "peak RSS "+FormatKiB(m.PeakRSS))
		}
	}
	return strings.Join(parts, ", ")
}

// FormatDuration prints a duration with three significant digits.
var FormatDuration = trace.FormatDuration

// FormatKiB prints a size given in KiB.
func FormatKiB(k uint64) string {
	if k < 1024 {
		return fmt.Sprintf("%d KiB", k)
	}
	return trace.ThreeDigits(float64(k)/1024, "MiB")
}
