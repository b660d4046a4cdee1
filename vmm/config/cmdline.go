package config

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Host is what the kernel command line depends on about the host.
type Host struct {
	PVM    bool   // /dev/kvm is kvm-pvm, a software nested KVM
	TSCKHz uint32 // the guest TSC frequency, 0 if unknown
}

// PVMClearCPUID lists CPU features a guest kernel must not use under
// kvm-pvm: its instruction emulator lacks them (xsave, popcnt, clac/stac)
// or they are only precautions for the same reason. See docs/pvm.md.
var PVMClearCPUID = []string{
	"xsave", "popcnt", "smap", "smep", "fsgsbase", "rdpid", "invpcid", "pcid",
	"umip", "erms", "fsrm", "avx", "avx2", "bmi1", "bmi2", "movbe", "rdrand",
	"rdseed", "adx", "sha_ni", "aes", "f16c", "fma",
}

// CommandParam is the kernel parameter carrying the guest command to the
// init: the arguments joined with NUL bytes, base64-encoded so that spaces
// and quotes survive the kernel's command-line parser.
const CommandParam = "kiln.cmd"

// EncodeCommand encodes argv for CommandParam.
func EncodeCommand(argv []string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(argv, "\x00")))
}

// DecodeCommand reverses EncodeCommand.
func DecodeCommand(s string) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad %s: %w", CommandParam, err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), "\x00"), nil
}

// KernelCmdline assembles the guest kernel's command line: kiln's defaults,
// the adaptations for a PVM host, the devices the kernel cannot discover
// (virtio-mmio windows), the guest command for init, and last the user's
// own arguments, which therefore win where they repeat a parameter.
func KernelCmdline(c *Config, h Host, devices []string) string {
	args := []string{
		"console=ttyS0",   // the 8250 UART on COM1
		"8250.nr_uarts=1", // probe only COM1
		"reboot=k",        // reboot through the i8042: kiln ends the VM
		"panic=-1",        // on panic, reboot at once: kiln reports a crash
	}
	if len(c.Command) > 0 && !c.Verbose {
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
		args = append(args, "kiln.net="+v)
	}
	if len(c.Command) > 0 {
		args = append(args, CommandParam+"="+EncodeCommand(c.Command))
	}
	if !c.Interactive {
		args = append(args, "kiln.raw=1")
	}
	if c.Cmdline != "" {
		args = append(args, c.Cmdline)
	}
	return strings.Join(args, " ")
}
