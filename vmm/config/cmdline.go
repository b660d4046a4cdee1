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
// carries it: the command (none for a shell), the console's mode and the
// shares to mount. The machine adds the entropy and the time when it
// hands the job over.
func (c *Config) Job() *contract.Job {
	j := &contract.Job{
		Argv:  c.Command,
		Raw:   !c.Interactive,
		Quiet: (len(c.Command) > 0 || c.Container != nil) && !c.Verbose,
	}
	j.Container = c.Container
	if c.Container != nil {
		return j // its init mounts the shares the container uses itself
	}
	for _, s := range c.Shares {
		j.Mounts = append(j.Mounts, contract.Mount{Tag: s.Tag, Dir: s.GuestDir, ReadOnly: s.ReadOnly})
	}
	return j
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

// KernelCmdline assembles the guest kernel's command line: kiln's defaults,
// the adaptations for a PVM host, the devices the kernel cannot discover
// (virtio-mmio windows), how init configures the network, and last the
// user's own arguments, which therefore win where they repeat a parameter.
// The command to run is not on it: init reads its job from the signal
// device (guest/contract), so that a VM restored from a snapshot gets its
// command the same way as one booted cold.
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
	}
	args = append(args, devices...)
	if len(c.Nets) > 0 && c.Nets[0].IP != "" {
		v := c.Nets[0].IP
		if c.Nets[0].Gateway != "" {
			v += "," + c.Nets[0].Gateway
		}
		args = append(args, contract.ParamNet+"="+v)
	}
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
