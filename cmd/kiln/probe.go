package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// cmdProbe is `kiln probe`: what this host's KVM offers, and what kiln
// changes for it. It opens /dev/kvm (or $KILN_KVM) and asks, without
// booting anything.
func cmdProbe(args []string) int {
	sub := newSubcommand("probe", "Usage: kiln probe\n\n"+
		"Shows what this host's KVM offers: the API version, the capabilities kiln\n"+
		"uses, the most vCPUs a VM may have, the CPUID leaves KVM can give a guest,\n"+
		"whether it is hardware KVM or kvm-pvm, and what kiln adapts for it.")
	if helped, err := sub.parse(args); helped || err != nil {
		if helped {
			return 0
		}
		return sub.fail(err)
	}
	if sub.fs.NArg() > 0 {
		return sub.fail(fmt.Errorf("%w: probe takes no arguments, not %q", config.ErrUsage, sub.fs.Arg(0)))
	}

	path := os.Getenv("KILN_KVM")
	if path == "" {
		path = kvm.DevicePath
	}
	sys, err := kvm.OpenPath(path)
	if err != nil {
		return fail(err)
	}
	defer sys.Close()
	if err := probe(os.Stdout, sys, path); err != nil {
		return fail(err)
	}
	return 0
}

// capUses says what kiln does with each capability it checks: the
// required ones first (kvm.RequiredCaps), then those it uses if present.
var capUses = []struct {
	cap kvm.Cap
	use string
}{
	{kvm.CapIRQChip, "in-kernel PICs, IOAPIC and local APICs (KVM_CREATE_IRQCHIP)"},
	{kvm.CapHLT, "HLT exits to user space when the vCPU can never wake"},
	{kvm.CapUserMemory, "guest RAM is kiln's own memory (KVM_SET_USER_MEMORY_REGION)"},
	{kvm.CapSetTSSAddr, "pages for Intel VT's real-mode support (KVM_SET_TSS_ADDR)"},
	{kvm.CapExtCPUID, "the guest's CPUID (KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2)"},
	{kvm.CapPIT2, "in-kernel 8254 timer (KVM_CREATE_PIT2)"},
	{kvm.CapIRQFD, "virtio interrupts from eventfds (KVM_IRQFD)"},
	{kvm.CapIOEventFD, "virtio queue notifications without an exit (KVM_IOEVENTFD)"},
	{kvm.CapSetIdentityMapAddr, "the identity page table for Intel VT (KVM_SET_IDENTITY_MAP_ADDR)"},
	{kvm.CapImmediateExit, "stopping vCPUs from another thread (kvm_run.immediate_exit)"},
	{kvm.CapGetTSCKHz, "the guest's TSC frequency, for tsc_early_khz= (KVM_GET_TSC_KHZ)"},
	{kvm.CapNrVCPUs, "the recommended number of vCPUs per VM"},
	{kvm.CapMaxVCPUs, "the most vCPUs per VM"},
}

// probe writes the report on sys, opened from path, to w.
func probe(w io.Writer, sys *kvm.System, path string) error {
	pvm := kvm.IsPVM()
	fmt.Fprintf(w, "%s: KVM API version %d (KVM_GET_API_VERSION)\n", path, kvm.APIVersion)
	if pvm {
		fmt.Fprintln(w, "kind: kvm-pvm, software nested virtualization (/sys/module/kvm_pvm); see docs/pvm.md")
	} else {
		fmt.Fprintln(w, "kind: hardware KVM (Intel VT-x or AMD-V)")
	}
	fmt.Fprintf(w, "vCPUs per VM: at most %d\n", sys.MaxVCPUs())
	tsc, err := tscKHz(sys)
	if err != nil {
		fmt.Fprintf(w, "TSC frequency: unknown (%v)\n", err)
	} else {
		fmt.Fprintf(w, "TSC frequency: %d kHz\n", tsc)
	}

	fmt.Fprintln(w, "\ncapabilities kiln uses (KVM_CHECK_EXTENSION):")
	for _, c := range capUses {
		n, _ := sys.CheckExtension(c.cap)
		need := "optional"
		if slices.Contains(kvm.RequiredCaps, c.cap) {
			need = "required"
		}
		fmt.Fprintf(w, "  %-30v %-8s %-8s %s\n", c.cap, capValue(c.cap, n), need, c.use)
	}

	supported, err := sys.SupportedCPUID()
	if err != nil {
		return fmt.Errorf("probe supported CPUID: %w", err)
	}
	fmt.Fprintf(w, "\nCPUID leaves KVM supports (KVM_GET_SUPPORTED_CPUID), %d entries; all-zero ones not shown:\n", len(supported))
	fmt.Fprintln(w, "  leaf.subleaf   eax       ebx       ecx       edx")
	for _, e := range supported {
		if e.EAX|e.EBX|e.ECX|e.EDX == 0 {
			continue
		}
		fmt.Fprintf(w, "  %#08x.%-3d %08x  %08x  %08x  %08x%s\n", e.Function, e.Index, e.EAX, e.EBX, e.ECX, e.EDX, cpuidSignature(e))
	}

	fmt.Fprintln(w, "\nwhat kiln changes in a guest's CPUID (vCPU 0 of 1, cpu.GuestCPUID):")
	guest := cpu.GuestCPUID(supported, 0, 1, pvm)
	for i := range supported {
		for _, d := range cpuidChanges(supported[i], guest[i]) {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	host := config.Host{PVM: pvm, TSCKHz: tsc}
	if added := cmdlineAdditions(host); len(added) > 0 {
		fmt.Fprintf(w, "\nkernel parameters kiln adds on this host (config.KernelCmdline):\n  %s\n", strings.Join(added, " "))
	} else {
		fmt.Fprintln(w, "\nkernel parameters kiln adds on this host: none, the guest keeps standard settings")
	}
	return nil
}

// capValue prints KVM_CHECK_EXTENSION's answer: yes or no for a feature,
// the number itself for a count.
func capValue(c kvm.Cap, n int) string {
	switch {
	case c == kvm.CapNrVCPUs || c == kvm.CapMaxVCPUs:
		return fmt.Sprint(n)
	case n > 0:
		return "yes"
	}
	return "NO"
}

// tscKHz asks a throwaway vCPU for its TSC frequency: the ioctl is a
// vCPU's, as each could have its own.
func tscKHz(sys *kvm.System) (uint32, error) {
	vm, err := sys.CreateVM()
	if err != nil {
		return 0, err
	}
	defer vm.Close()
	v, err := vm.CreateVCPU(0)
	if err != nil {
		return 0, err
	}
	defer v.Close()
	return v.TSCKHz()
}

// cpuidChanges describes how kiln's guest entry g differs from KVM's
// supported entry s: feature bits cleared or set by name, other fields
// (APIC ID, topology) as old and new values.
func cpuidChanges(s, g kvm.CPUIDEntry) []string {
	var out []string
	for _, r := range []struct {
		name     string
		old, new uint32
	}{{"eax", s.EAX, g.EAX}, {"ebx", s.EBX, g.EBX}, {"ecx", s.ECX, g.ECX}, {"edx", s.EDX, g.EDX}} {
		if r.old == r.new {
			continue
		}
		where := fmt.Sprintf("leaf %#x.%d %s:", s.Function, s.Index, r.name)
		names, flags := cpuidBitNames[cpuidReg{s.Function, s.Index, r.name}]
		if !flags {
			out = append(out, fmt.Sprintf("%s %#08x -> %#08x%s", where, r.old, r.new, cpuidField(s.Function, r.name)))
			continue
		}
		d := where
		if set := bitNames(r.new&^r.old, names); set != "" {
			d += " sets " + set
		}
		if cleared := bitNames(r.old&^r.new, names); cleared != "" {
			d += " clears " + cleared
		}
		out = append(out, d)
	}
	return out
}

// cpuidField says what the value kiln rewrites in a register that does
// not hold flags means.
func cpuidField(function uint32, reg string) string {
	switch {
	case function == 0x1 && reg == "ebx":
		return " (bits 31-24: initial APIC ID, 23-16: logical processors)"
	case function == 0x4 && reg == "eax":
		return " (bits 31-26: cores per package, less one)"
	case function == 0xb:
		return " (x2APIC topology: EAX shift to the next level, EBX count, ECX level type, EDX x2APIC ID)"
	}
	return ""
}

// cpuidSignature prints the vendor text of a leaf that holds one: the CPU
// vendor in leaves 0 and 0x80000000 (EBX, EDX, ECX), the hypervisor in
// 0x40000000 (EBX, ECX, EDX).
func cpuidSignature(e kvm.CPUIDEntry) string {
	var regs []uint32
	switch e.Function {
	case 0x0, 0x80000000:
		regs = []uint32{e.EBX, e.EDX, e.ECX}
	case 0x40000000:
		regs = []uint32{e.EBX, e.ECX, e.EDX}
	default:
		return ""
	}
	var b []byte
	for _, r := range regs {
		b = binary.LittleEndian.AppendUint32(b, r)
	}
	return fmt.Sprintf("  %q", strings.TrimRight(string(b), "\x00"))
}

// cpuidReg is one register of one CPUID leaf and subleaf.
type cpuidReg struct {
	function, index uint32
	reg             string
}

// cpuidBitNames are the feature bits kiln changes, by the names Linux
// gives them in /proc/cpuinfo (Intel SDM vol. 2A, CPUID; for the KVM leaf,
// Documentation/virt/kvm/x86/cpuid.rst). Registers listed here hold flags.
var cpuidBitNames = map[cpuidReg]map[int]string{
	{0x1, 0, "ecx"}: {1: "pclmulqdq", 12: "fma", 13: "cx16", 22: "movbe", 23: "popcnt", 25: "aes",
		26: "xsave", 27: "osxsave", 28: "avx", 29: "f16c", 30: "rdrand", 31: "hypervisor"},
	{0x1, 0, "edx"}: {28: "ht"},
	{0x7, 0, "ebx"}: {0: "fsgsbase", 3: "bmi1", 5: "avx2", 7: "smep", 8: "bmi2", 9: "erms", 10: "invpcid",
		16: "avx512f", 17: "avx512dq", 18: "rdseed", 19: "adx", 20: "smap", 21: "avx512ifma",
		26: "avx512pf", 27: "avx512er", 28: "avx512cd", 29: "sha_ni", 30: "avx512bw", 31: "avx512vl"},
	{0x7, 0, "ecx"}: {2: "umip", 22: "rdpid"},
	{0x7, 0, "edx"}: {4: "fsrm"},
	{0x40000001, 0, "eax"}: {4: "async_pf", 7: "pv_unhalt", 11: "pv_send_ipi", 13: "pv_sched_yield",
		14: "async_pf_int", 16: "map_gpa_range"},
}

// bitNames names the set bits of v, or numbers them where names has none.
func bitNames(v uint32, names map[int]string) string {
	var s []string
	for i := 0; i < 32; i++ {
		if v&(1<<i) == 0 {
			continue
		}
		if n, ok := names[i]; ok {
			s = append(s, n)
		} else {
			s = append(s, fmt.Sprintf("bit%d", i))
		}
	}
	return strings.Join(s, " ")
}

// cmdlineAdditions returns the kernel parameters kiln adds because of what
// the host is: those in the command line for host that are not in the one
// for a plain hardware host.
func cmdlineAdditions(host config.Host) []string {
	cfg := &config.Config{}
	plain := strings.Fields(config.KernelCmdline(cfg, config.Host{}, nil))
	var added []string
	for _, p := range strings.Fields(config.KernelCmdline(cfg, host, nil)) {
		if !slices.Contains(plain, p) {
			added = append(added, p)
		}
	}
	return added
}
