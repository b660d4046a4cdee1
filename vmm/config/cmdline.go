package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Host is what the kernel command line depends on about the host.
type Host struct {
	PVM    bool   // /dev/kvm is kvm-pvm, a software nested KVM
	TSCKHz uint32 // the guest TSC frequency, 0 if unknown
}

// Job is what the guest's init is to run, as the guest-host contract
// carries it: the command (none for a shell), the console's mode, the
// shares to mount and the network interfaces to configure. The machine
// adds the entropy and the time when it hands the job over.
func (c *Config) Job() *contract.Job {
	j := &contract.Job{
		Argv:  c.Command,
		Raw:   !c.Interactive,
		Quiet: (len(c.Command) > 0 || c.Container != nil) && !c.Verbose,
		Net:   c.guestNet(),
	}
	j.Container = c.Container
	j.Ready = c.Ready
	if c.Container != nil {
		return j // its init mounts the shares the container uses itself
	}
	for _, s := range c.Shares {
		j.Mounts = append(j.Mounts, contract.Mount{Tag: s.Tag, Dir: s.GuestDir, ReadOnly: s.ReadOnly})
	}
	return j
}

// guestNet is how the guest's init configures its network interfaces:
// Interfaces if given, or else each network device as its Net says: its
// MAC address and, with an IP, that address and a default route through
// the gateway. The job carries it to every VM, cold booted or restored
// (a restored guest's interfaces still have the snapshot's MAC address,
// which its driver read when it probed the device), and init replaces
// what the interface had, so each clone of a snapshot is on the network
// as itself.
func (c *Config) guestNet() []contract.Interface {
	if c.Interfaces != nil {
		return c.Interfaces
	}
	var ifcs []contract.Interface
	for i, n := range c.Nets {
		ifc := contract.Interface{Name: NetName(i)}
		if n.IP != "" {
			v := n.IP
			if n.Gateway != "" {
				v += "," + n.Gateway
			}
			// ParseNet checked both; the contract's own parser makes the
			// Interface, as init would from kiln.net.
			if p, err := contract.ParseNetParam(v); err == nil {
				ifc = p
				ifc.Name = NetName(i)
			}
		}
		ifc.MAC = n.Address().String()
		ifcs = append(ifcs, ifc)
	}
	return ifcs
}

// PVMClearCPUID lists, by the names of the kernel's clearcpuid=
// parameter, the CPU features a guest kernel must not use under
// kvm-pvm: its instruction emulator lacks them (xsave, popcnt, clac/stac)
// or they are only precautions for the same reason. vmm/cpu masks the same
// features out of the guest's CPUID; not every bit is honoured from CPUID
// alone, so the command line says it again. See docs/pvm.md.
var PVMClearCPUID = []string{
	"xsave", "popcnt", "smap", "smep", "fsgsbase", "rdpid", "invpcid", "pcid",
	"umip", "erms", "fsrm", "avx", "avx2", "bmi1", "bmi2", "movbe", "rdrand",
	"rdseed", "adx", "sha_ni", "aes", "f16c", "fma",
}

// PVMGuestEnv is the environment kiln gives every program in a guest
// under kvm-pvm, through the kernel command line (the kernel hands a
// KEY=VALUE parameter it does not know to init as its environment, and
// init to every process it starts, containers' included). It keeps Go's
// runtime and glibc's string functions off the AVX and AVX-512
// registers.
//
// Under kvm-pvm guest user mode runs on the host CPU: its CPUID and XGETBV
// report the host's AVX-512 enabled, whatever the guest's CPUID table and
// XCR0 say. The guest kernel saves FPU state with FXSAVE (its XSAVE is
// off: the emulator lacks the instruction), which holds the x87 and SSE
// registers only, so the upper halves of YMM, the ZMM and the mask
// registers are never saved on a context switch or around a signal: one
// process's vector registers leak into another's. A Go program's memory
// copies, stack copies and garbage collector use them; it then crashes at
// random ("traceback did not unwind completely", SIGSEGV in the runtime).
// Programs that detect features some other way are not covered; see
// docs/pvm.md.
var PVMGuestEnv = []string{
	"GODEBUG=" + strings.Join([]string{
		"cpu.avx=off", "cpu.avx2=off", "cpu.fma=off", "cpu.avx512f=off", "cpu.avx512cd=off",
		"cpu.avx512bw=off", "cpu.avx512dq=off", "cpu.avx512vl=off", "cpu.vpclmulqdq=off",
	}, ","),
	"GLIBC_TUNABLES=glibc.cpu.hwcaps=" + strings.Join([]string{
		"-AVX", "-AVX2", "-FMA", "-F16C", "-AVX_VNNI", "-AVX512F", "-AVX512CD", "-AVX512BW",
		"-AVX512DQ", "-AVX512VL",
	}, ","),
}

// KernelCmdline assembles the guest kernel's command line: kiln's defaults,
// the adaptations for a PVM host, the devices the kernel cannot discover
// (virtio-mmio windows), and last the user's own arguments, which
// therefore win where they repeat a parameter. The command to run and the
// network's addresses are not on it: init reads its job from the signal
// device (guest/contract), so that a VM restored from a snapshot gets its
// command and addresses the same way as one booted cold.
func KernelCmdline(c *Config, h Host, devices []string) string {
	args := []string{
		"console=ttyS0",   // the 8250 UART on COM1
		"8250.nr_uarts=1", // probe only COM1
		"reboot=k",        // reboot through the i8042: kiln ends the VM
		"panic=-1",        // on panic, reboot at once: kiln reports a crash
	}
	if (len(c.Command) > 0 || c.Snapshot) && !c.Verbose {
		args = append(args, "quiet")
	}
	if h.PVM {
		args = append(args, "clearcpuid="+strings.Join(PVMClearCPUID, ","), "rodata=off")
		if h.TSCKHz != 0 {
			args = append(args, fmt.Sprintf("tsc_early_khz=%d", h.TSCKHz))
		}
		args = append(args, PVMGuestEnv...)
	}
	args = append(args, devices...)
	// The network devices' addresses are not here (contract.ParamNet):
	// the job carries them (Job.Net), to a cold boot and to each VM
	// restored from a snapshot alike, which a command line cannot reach.
	if c.Cmdline != "" {
		args = append(args, c.Cmdline)
	}
	return strings.Join(args, " ")
}

// ForeignCmdline is the command line for running c's guest under another
// VMM, one without kiln's signal device (kiln run --print-cmdline, and QEMU
// in kiln bench): kiln's command line plus the job as ParamJob, which init
// takes instead of asking the device.
func ForeignCmdline(c *Config, h Host, devices []string) (string, error) {
	job, err := contract.EncodeJobParam(c.Job())
	if err != nil {
		return "", err
	}
	line := KernelCmdline(c, h, devices)
	if c.Cmdline != "" {
		// The user's arguments stay last.
		base := strings.TrimSuffix(line, " "+c.Cmdline)
		return base + " " + contract.ParamJob + "=" + job + " " + c.Cmdline, nil
	}
	return line + " " + contract.ParamJob + "=" + job, nil
}

// HostParams returns the kernel parameters kiln adds because of what the
// host is: those in the command line for host that are not in the one
// for a plain hardware host.
func HostParams(host Host) []string {
	cfg := &Config{}
	plain := strings.Fields(KernelCmdline(cfg, Host{}, nil))
	var added []string
	for _, p := range strings.Fields(KernelCmdline(cfg, host, nil)) {
		if !slices.Contains(plain, p) {
			added = append(added, p)
		}
	}
	return added
}
