package kvm

import "fmt"

// Cap is a KVM capability number for KVM_CHECK_EXTENSION.
type Cap uintptr

// The capabilities kiln uses.
const (
	CapIRQChip            Cap = 0
	CapHLT                Cap = 1
	CapUserMemory         Cap = 3
	CapSetTSSAddr         Cap = 4
	CapExtCPUID           Cap = 7
	CapNrVCPUs            Cap = 9
	CapPIT2               Cap = 33
	CapIRQFD              Cap = 32
	CapIOEventFD          Cap = 36
	CapSetIdentityMapAddr Cap = 37
	CapGetTSCKHz          Cap = 61
	CapMaxVCPUs           Cap = 66
	CapImmediateExit      Cap = 136
)

var capNames = map[Cap]string{
	CapIRQChip:            "KVM_CAP_IRQCHIP",
	CapHLT:                "KVM_CAP_HLT",
	CapUserMemory:         "KVM_CAP_USER_MEMORY",
	CapSetTSSAddr:         "KVM_CAP_SET_TSS_ADDR",
	CapExtCPUID:           "KVM_CAP_EXT_CPUID",
	CapNrVCPUs:            "KVM_CAP_NR_VCPUS",
	CapPIT2:               "KVM_CAP_PIT2",
	CapIRQFD:              "KVM_CAP_IRQFD",
	CapIOEventFD:          "KVM_CAP_IOEVENTFD",
	CapSetIdentityMapAddr: "KVM_CAP_SET_IDENTITY_MAP_ADDR",
	CapGetTSCKHz:          "KVM_CAP_GET_TSC_KHZ",
	CapMaxVCPUs:           "KVM_CAP_MAX_VCPUS",
	CapImmediateExit:      "KVM_CAP_IMMEDIATE_EXIT",
}

func (c Cap) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return fmt.Sprintf("KVM_CAP(%d)", uintptr(c))
}

// RequiredCaps are the capabilities without which kiln cannot run a guest.
var RequiredCaps = []Cap{
	CapIRQChip, CapHLT, CapUserMemory, CapSetTSSAddr, CapExtCPUID,
	CapPIT2, CapIRQFD, CapIOEventFD, CapSetIdentityMapAddr, CapImmediateExit,
}

// CapUses says what kiln does with each capability it checks: the
// required ones first (kvm.RequiredCaps), then those it uses if present.
var CapUses = []struct {
	Cap Cap
	Use string
}{
	{CapIRQChip, "in-kernel PICs, IOAPIC and local APICs (KVM_CREATE_IRQCHIP)"},
	{CapHLT, "HLT exits to user space when the vCPU can never wake"},
	{CapUserMemory, "guest RAM is kiln's own memory (KVM_SET_USER_MEMORY_REGION)"},
	{CapSetTSSAddr, "pages for Intel VT's real-mode support (KVM_SET_TSS_ADDR)"},
	{CapExtCPUID, "the guest's CPUID (KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2)"},
	{CapPIT2, "in-kernel 8254 timer (KVM_CREATE_PIT2)"},
	{CapIRQFD, "virtio interrupts from eventfds (KVM_IRQFD)"},
	{CapIOEventFD, "virtio queue notifications without an exit (KVM_IOEVENTFD)"},
	{CapSetIdentityMapAddr, "the identity page table for Intel VT (KVM_SET_IDENTITY_MAP_ADDR)"},
	{CapImmediateExit, "stopping vCPUs from another thread (kvm_run.immediate_exit)"},
	{CapGetTSCKHz, "the guest's TSC frequency, for tsc_early_khz= (KVM_GET_TSC_KHZ)"},
	{CapNrVCPUs, "the recommended number of vCPUs per VM"},
	{CapMaxVCPUs, "the most vCPUs per VM"},
}
