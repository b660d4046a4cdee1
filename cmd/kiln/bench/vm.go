package bench

import (
	"context"
	"sync"

	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/trace"
)

// Marker is what the guest's init prints when user space starts, asked for
// with the kiln.mark kernel parameter (guest/contract). kiln's own
// boot-signal device gives the same moment without the console, in kiln
// run's report; QEMU has no such device, so its user-space time is the
// moment this line appears.
const Marker = "KILN_BENCH_USERSPACE"

// kilnMethod starts the workload in a kiln microVM.
func (b *bench) kilnMethod() runner {
	args := append([]string{b.opt.Kiln, "run"}, reportArgs...)
	args = append(args, "--kernel", b.opt.Kernel, "--initrd", b.opt.Initrd,
		"--memory", fmt.Sprintf("%dM", b.opt.Memory>>20), "--")
	args = append(args, b.opt.Command...)
	return runner{
		Method: Method{Name: "kiln", Kind: "vm",
			Detail: "kiln run: PVH vmlinux, initramfs, serial, virtio-rng; user space from kiln's boot-signal device"},
		run: func(ctx context.Context) Sample {
			s, o := b.bootVM(ctx, args, "", "kiln", "the guest never reported user space")
			s.Phases = phases(o)
			return s
		},
	}
}

// kilnRestoreMethod starts the workload in a kiln microVM restored from a
// snapshot of the same guest, taken once before the rounds: the way kiln
// starts VMs when speed matters.
func (b *bench) kilnRestoreMethod() runner {
	r := runner{Method: Method{Name: "kiln-restore", Kind: "vm",
		Detail: "kiln run --restore: the same guest restored from a snapshot taken at its init's readiness (kiln snapshot); guest RAM mapped from the snapshot file"}}
	if !b.selected(r.Name) {
		return r
	}
	dir := filepath.Join(b.work, "snapshot")
	b.progress("kiln-restore: taking the snapshot the rounds restore (one cold boot)")
	start := time.Now()
	out, err := exec.Command(b.opt.Kiln, "snapshot", "--out", dir, "--kernel", b.opt.Kernel,
		"--initrd", b.opt.Initrd, "--memory", fmt.Sprintf("%dM", b.opt.Memory>>20)).CombinedOutput()
	if err != nil {
		r.Unavailable = fmt.Sprintf("kiln snapshot failed: %v: %s", err, strings.TrimSpace(string(out)))
		return r
	}
	took := time.Since(start)
	b.snapshot = dir
	b.res.Snapshot = &SnapshotInfo{Took: took, Memory: fileBlocks(filepath.Join(dir, "memory")), State: fileBlocks(filepath.Join(dir, "state.json"))}
	r.Detail += fmt.Sprintf("; taking it took %s, it holds %s of memory and %s of state on disk",
		FormatDuration(took), FormatKiB(b.res.Snapshot.Memory), FormatKiB(b.res.Snapshot.State))
	b.progress("kiln-restore: snapshot taken in %s (%s of memory on disk)", FormatDuration(took), FormatKiB(b.res.Snapshot.Memory))
	args := append([]string{b.opt.Kiln, "run"}, reportArgs...)
	args = append(args, "--restore", dir, "--")
	args = append(args, b.opt.Command...)
	r.run = func(ctx context.Context) Sample {
		s, o := b.bootVM(ctx, args, "", "kiln", "the restored guest never reported user space")
		s.Phases = phases(o)
		return s
	}
	return r
}

// settle is how often a VMM's memory is sampled again after user space,
// until it exits.
const settle = 100 * time.Millisecond

// bootVM starts a VMM once: the user-space moment is the line containing
// mark, or with mark "" kiln's report of it, when the VMM's memory is
// also sampled, and again every settle until it exits (steadyMemory
// picks the figure reported).
func (b *bench) bootVM(ctx context.Context, argv []string, mark, name, noMark string) (Sample, outcome) {
	var (
		mu      sync.Mutex
		samples []memSample
		memErr  error
		running bool // kiln reported the guest's command running
		sampled = make(chan struct{})
		marked  bool
	)
	l := launch{argv: argv, mark: mark, report: mark == "", timeout: b.opt.Timeout,
		onEvent: func(e trace.Event) {
			if e.Event == "running" {
				mu.Lock()
				running = true
				mu.Unlock()
			}
		},
		onMark: func(pid int) {
			m, err := readVMMMemory(pid, b.opt.Memory>>10)
			mu.Lock()
			marked, memErr = true, err
			if err == nil {
				samples = append(samples, memSample{m, running})
			}
			mu.Unlock()
			go func() {
				defer close(sampled)
				for {
					time.Sleep(settle)
					m, err := readVMMMemory(pid, b.opt.Memory>>10)
					if err != nil {
						return // it exited
					}
					mu.Lock()
					samples, memErr = append(samples, memSample{m, running}), nil
					mu.Unlock()
				}
			}()
		}}
	o, err := l.run(ctx)
	mu.Lock()
	if marked {
		mu.Unlock()
		<-sampled // ends once the VMM is gone
		mu.Lock()
	}
	s := Sample{Exit: o.exit, Memory: steadyMemory(samples)}
	sampleErr := memErr
	mu.Unlock()
	switch {
	case err != nil:
		s.Err = err.Error()
	case o.status != 0:
		s.Err = fmt.Sprintf("%s exited with status %d%s", name, o.status, o.tail())
	case !o.marked:
		s.Err = noMark + o.tail()
	case sampleErr != nil:
		s.Err = "memory: " + sampleErr.Error()
	}
	if o.marked {
		s.Userspace = o.mark
	}
	return s, o
}

// qemuMethod starts the same kernel, initramfs and command line in QEMU's
// microvm machine. QEMU announces its virtio-mmio devices on the command
// line itself (with acpi=off), so kiln's virtio_mmio.device= entries are
// left out, and it gets the entropy device kiln gives its guests too.
func (b *bench) qemuMethod() runner {
	r := runner{Method: Method{Name: "qemu-microvm", Kind: "vm",
		Detail: "qemu-system-x86_64 -M microvm, same vmlinux, initramfs and command line, virtio-rng; user space from the console marker"}}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		r.Unavailable = "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86; scripts/deps.sh does it as root)"
		return r
	}
	cpu := "host"
	if b.opt.Host.PVM {
		// What kiln gives its guest on a PVM host (docs/pvm.md).
		cpu = "host,-cx16,-xsave,-arch-capabilities,kvm-pv-unhalt=off,kvm-pv-ipi=off," +
			"kvm-pv-sched-yield=off,kvm-asyncpf=off,kvm-asyncpf-int=off"
	}
	args := []string{qemu, "-M", "microvm,x-option-roms=off,rtc=off,acpi=off",
		"-enable-kvm", "-cpu", cpu, "-m", fmt.Sprintf("%dM", b.opt.Memory>>20), "-smp", "1",
		"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
		"-kernel", b.opt.Kernel, "-initrd", b.opt.Initrd,
		"-append", qemuCmdline(b.cmdline), "-device", "virtio-rng-device"}
	r.run = func(ctx context.Context) Sample {
		s, _ := b.bootVM(ctx, args, Marker, "qemu", "QEMU's guest never printed the user-space marker")
		return s
	}
	return r
}

// qemuCmdline is kiln's guest command line without kiln's own virtio-mmio
// device announcements.
func qemuCmdline(kiln string) string {
	var out []string
	for _, f := range strings.Fields(kiln) {
		if !strings.HasPrefix(f, "virtio_mmio.device=") {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}

// phases is where a kiln boot's time went, from the "end" event of its
// report; nil if it has none.
func phases(o outcome) *Phases {
	e, ok := o.end()
	if !ok || e.Phases == nil {
		return nil
	}
	p := e.Phases
	return &Phases{
		VMMSetup:  time.Duration(p.VMMSetupNS),
		Kernel:    time.Duration(p.KernelNS),
		UserSpace: time.Duration(p.InitNS + p.CommandNS),
	}
}

// fileBlocks is the disk space a file takes, in KiB (holes take none).
func fileBlocks(path string) uint64 {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0
	}
	return uint64(st.Blocks) / 2
}
