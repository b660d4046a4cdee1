package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Marker is what the guest's init prints when user space starts, asked for
// with the kiln.mark kernel parameter (guest/init). kiln's own boot-signal
// device gives the same moment without the console; QEMU has no such
// device, so its user-space time is the moment this line appears.
const Marker = "KILN_BENCH_USERSPACE"

// bootTimeLine is kiln's --boot-time report, printed the moment the guest's
// init writes to the boot-signal device.
const bootTimeLine = "kiln: boot time (launch to guest user space)"

// kilnMethod starts the workload in a kiln microVM.
func (b *bench) kilnMethod() runner {
	args := []string{b.opt.Kiln, "run", "--boot-time", "--stats",
		"--kernel", b.opt.Kernel, "--initrd", b.opt.Initrd,
		"--memory", fmt.Sprintf("%dM", b.opt.Memory>>20),
		"--cmdline", "kiln.mark=" + Marker, "--"}
	args = append(args, b.opt.Command...)
	return runner{
		Method: Method{Name: "kiln", Kind: "vm",
			Detail: "kiln run: PVH vmlinux, initramfs, serial, virtio-rng; user space from kiln's boot-signal device"},
		run: func(ctx context.Context) Sample {
			s, o := b.bootVM(ctx, args, bootTimeLine, "kiln", "the guest never reported user space")
			s.Phases = parsePhases(o.allText)
			return s
		},
	}
}

// bootVM starts a VMM once: the user-space moment is the line containing
// mark, when the VMM's memory is also sampled.
func (b *bench) bootVM(ctx context.Context, argv []string, mark, name, noMark string) (Sample, outcome) {
	var mem *Memory
	var memErr error
	l := launch{argv: argv, mark: mark, timeout: b.opt.Timeout,
		onMark: func(pid int) {
			m, err := readVMMMemory(pid, b.opt.Memory>>10)
			mem, memErr = &m, err
		}}
	o, err := l.run(ctx)
	s := Sample{Exit: o.exit, Memory: mem}
	switch {
	case err != nil:
		s.Err = err.Error()
	case o.status != 0:
		s.Err = fmt.Sprintf("%s exited with status %d%s", name, o.status, o.tail())
	case !o.marked:
		s.Err = noMark + o.tail()
	case memErr != nil:
		s.Err = "memory: " + memErr.Error()
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

// parsePhases reads the boot phases from the table kiln --stats prints
// (rows like "kernel   20.8 s   first KVM_RUN   guest user space"); nil if
// absent.
func parsePhases(out string) *Phases {
	var p Phases
	found := 0
	for _, line := range strings.Split(out, "\n") {
		for _, ph := range []struct {
			name string
			dst  *time.Duration
		}{{"VMM setup", &p.VMMSetup}, {"kernel", &p.Kernel}, {"user space", &p.UserSpace}} {
			rest, ok := strings.CutPrefix(line, ph.name+" ")
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			if len(f) < 2 {
				continue
			}
			d, err := time.ParseDuration(f[0] + strings.Replace(f[1], "µs", "us", 1))
			if err != nil {
				continue
			}
			*ph.dst = d
			found++
		}
	}
	if found == 0 {
		return nil
	}
	return &p
}
