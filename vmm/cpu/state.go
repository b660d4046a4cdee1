package cpu

import (
	"fmt"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// State is everything KVM keeps about one vCPU, as a snapshot holds it: what
// CPUID answers, the general and special registers, the FPU/SSE/AVX state
// with XCR0, the debug registers, the local APIC, whether it runs or waits,
// the exceptions and interrupts in flight, and every model-specific
// register KVM lists, the TSC and kvmclock's among them.
type State struct {
	CPUID  []kvm.CPUIDEntry `json:"cpuid"`
	MP     kvm.MPState      `json:"mp_state"`
	Regs   kvm.Regs         `json:"regs"`
	Sregs  kvm.Sregs        `json:"sregs"`
	XSave  *kvm.XSave       `json:"xsave"`
	XCRs   kvm.XCRs         `json:"xcrs"`
	Debug  kvm.DebugRegs    `json:"debug_regs"`
	LAPIC  *kvm.LAPICState  `json:"lapic"`
	MSRs   []kvm.MSR        `json:"msrs"`
	Events *kvm.VCPUEvents  `json:"events"`
	TSCKHz uint32           `json:"tsc_khz"`
}

// SaveState reads v's state. The vCPU must be stopped, with no exit half
// handled (kvm.VCPU.FinishPending), and so must every other vCPU of the
// VM: the events of one vCPU can depend on another's. cpuid is what v was
// given (KVM_SET_CPUID2); msrs are the registers to save
// (kvm.System.MSRIndexList).
//
// The order follows KVM's needs, as Firecracker's vcpu.rs explains them:
// MP state first, since reading it lets the local APIC accept pending
// INIT and SIPI events and so changes what the other ioctls return; the
// events last.
func SaveState(v *kvm.VCPU, cpuid []kvm.CPUIDEntry, msrs []uint32) (*State, error) {
	s := &State{CPUID: cpuid}
	var err error
	step := func(name string, f func() error) {
		if err == nil {
			if e := f(); e != nil {
				err = fmt.Errorf("vCPU %d: save %s: %w", v.ID(), name, e)
			}
		}
	}
	step("MP state", func() (e error) { s.MP, e = v.MPState(); return })
	step("registers", func() (e error) { s.Regs, e = v.Regs(); return })
	step("special registers", func() (e error) { s.Sregs, e = v.Sregs(); return })
	step("XSAVE state", func() (e error) { s.XSave, e = v.XSave(); return })
	step("XCRs", func() (e error) { s.XCRs, e = v.XCRs(); return })
	step("debug registers", func() (e error) { s.Debug, e = v.DebugRegs(); return })
	step("local APIC", func() (e error) { s.LAPIC, e = v.LAPIC(); return })
	step("TSC frequency", func() (e error) { s.TSCKHz, e = v.TSCKHz(); return })
	step("MSRs", func() (e error) { s.MSRs, e = v.MSRs(msrs); return })
	step("events", func() (e error) { s.Events, e = v.VCPUEvents(); return })
	return s, err
}

// RestoreState writes s into v, in the order KVM needs: CPUID first (other
// state is checked against it); registers before the events, because
// KVM_SET_REGS clears pending exceptions that KVM_SET_VCPU_EVENTS brings
// back; special registers before the local APIC, because they hold the
// APIC base; the local APIC before the MSRs, because the TSC deadline MSR
// only takes on a configured APIC.
func RestoreState(v *kvm.VCPU, s *State) error {
	if s.XSave == nil || s.LAPIC == nil || s.Events == nil {
		return fmt.Errorf("vCPU %d: the saved state is incomplete", v.ID())
	}
	var err error
	step := func(name string, f func() error) {
		if err == nil {
			if e := f(); e != nil {
				err = fmt.Errorf("vCPU %d: restore %s: %w", v.ID(), name, e)
			}
		}
	}
	step("CPUID", func() error { return v.SetCPUID(s.CPUID) })
	step("MP state", func() error { return v.SetMPState(s.MP) })
	step("registers", func() error { return v.SetRegs(s.Regs) })
	step("special registers", func() error { return v.SetSregs(s.Sregs) })
	step("XSAVE state", func() error { return v.SetXSave(s.XSave) })
	step("XCRs", func() error { return v.SetXCRs(s.XCRs) })
	step("debug registers", func() error { return v.SetDebugRegs(s.Debug) })
	step("local APIC", func() error { return v.SetLAPIC(s.LAPIC) })
	step("MSRs", func() error { return v.SetMSRs(s.MSRs) })
	step("events", func() error { return v.SetVCPUEvents(s.Events) })
	return err
}

// Vendor returns the CPU vendor string of a CPUID table: leaf 0's EBX,
// EDX and ECX ("AuthenticAMD", "GenuineIntel").
func Vendor(cpuid []kvm.CPUIDEntry) string {
	for _, e := range cpuid {
		if e.Function == 0 {
			b := make([]byte, 12)
			for i, r := range []uint32{e.EBX, e.EDX, e.ECX} {
				b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(r), byte(r>>8), byte(r>>16), byte(r>>24)
			}
			return string(b)
		}
	}
	return ""
}

// tssBusy is the busy bit of a TSS descriptor's type (11 busy, 9
// available).
const tssBusy = 0x2

// ForSVM adapts a saved state for restoring on AMD's SVM: the task
// register as SVM hardware holds it. KVM reports every TR as busy
// (arch/x86/kvm/svm/svm.c, svm_get_segment: "the busy flag in the tr
// selector isn't exposed") because Intel's VM entry requires it; an AMD
// CPU keeps the type the descriptor had when the guest's LTR loaded it,
// available, and does not look at it again in long mode. Writing the busy
// type back is harmless on silicon, but an emulation of SVM that checks
// the cached type before every user-mode I/O permission check (QEMU's
// TCG, where kiln's nested test hosts run) would then refuse the guest
// its ports. The TSS in guest memory is untouched.
func ForSVM(s *State) {
	s.Sregs.TR.Type &^= tssBusy
}

// featureWords are the CPUID registers that list CPU features a guest
// kernel relies on once it has booted: it chose its code paths (and
// patched itself) by them.
var featureWords = []struct {
	function, index uint32
	reg             string
	ignore          uint32 // bits kiln sets itself (HTT, the hypervisor bit)
}{
	{1, 0, "ecx", ecxHypervisor},
	{1, 0, "edx", edxHTT},
	{7, 0, "ebx", 0},
	{7, 0, "ecx", 0},
	{7, 0, "edx", 0},
	{0xd, 1, "eax", 0},
	{0x80000001, 0, "ecx", 0},
	{0x80000001, 0, "edx", 0},
}

// MissingFeatures lists the CPU features a saved guest's CPUID has that
// this host's KVM does not offer (supported, KVM_GET_SUPPORTED_CPUID): a
// guest restored here would run into instructions the CPU lacks.
func MissingFeatures(guest, supported []kvm.CPUIDEntry) []string {
	var missing []string
	for _, w := range featureWords {
		g, ok := leaf(guest, w.function, w.index)
		if !ok {
			continue
		}
		h, _ := leaf(supported, w.function, w.index)
		if extra := register(g, w.reg) &^ register(h, w.reg) &^ w.ignore; extra != 0 {
			missing = append(missing, fmt.Sprintf("leaf %#x.%d %s bits %#x", w.function, w.index, w.reg, extra))
		}
	}
	return missing
}

// leaf finds a CPUID leaf and subleaf.
func leaf(entries []kvm.CPUIDEntry, function, index uint32) (kvm.CPUIDEntry, bool) {
	for _, e := range entries {
		if e.Function == function && (e.Index == index || e.Flags&kvm.CPUIDFlagSignificantIndex == 0) {
			return e, true
		}
	}
	return kvm.CPUIDEntry{}, false
}

func register(e kvm.CPUIDEntry, name string) uint32 {
	switch name {
	case "eax":
		return e.EAX
	case "ebx":
		return e.EBX
	case "ecx":
		return e.ECX
	}
	return e.EDX
}
