package cpu

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// CPUID in words, for kiln probe: the changes kiln makes to a guest's
// leaves, by the names Linux gives the feature bits, and the vendor text
// some leaves hold.

// DescribeChanges describes how kiln's guest entry g differs from KVM's
// supported entry s: feature bits cleared or set by name, other fields
// (APIC ID, topology) as old and new values.
func DescribeChanges(s, g kvm.CPUIDEntry) []string {
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

// Signature prints the vendor text of a leaf that holds one: the CPU
// vendor in leaves 0 and 0x80000000 (EBX, EDX, ECX), the hypervisor in
// 0x40000000 (EBX, ECX, EDX).
func Signature(e kvm.CPUIDEntry) string {
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
