package kvm

// ioctl request numbers, from include/uapi/linux/kvm.h. They encode the
// direction and size of the argument: _IO(KVMIO, nr) has none,
// _IOW/_IOR/_IOWR name a struct whose size is part of the number.
const (
	kvmio = 0xAE

	kvmGetAPIVersion       = 0xAE00     // _IO(KVMIO, 0x00)
	kvmCreateVM            = 0xAE01     // _IO(KVMIO, 0x01)
	kvmCheckExtension      = 0xAE03     // _IO(KVMIO, 0x03)
	kvmGetVCPUMmapSize     = 0xAE04     // _IO(KVMIO, 0x04)
	kvmGetSupportedCPUID   = 0xC008AE05 // _IOWR(KVMIO, 0x05, struct kvm_cpuid2)
	kvmCreateVCPU          = 0xAE41     // _IO(KVMIO, 0x41)
	kvmSetUserMemoryRegion = 0x4020AE46 // _IOW(KVMIO, 0x46, struct kvm_userspace_memory_region)
	kvmSetTSSAddr          = 0xAE47     // _IO(KVMIO, 0x47)
	kvmSetIdentityMapAddr  = 0x4008AE48 // _IOW(KVMIO, 0x48, __u64)
	kvmCreateIRQChip       = 0xAE60     // _IO(KVMIO, 0x60)
	kvmIRQLine             = 0x4008AE61 // _IOW(KVMIO, 0x61, struct kvm_irq_level)
	kvmIRQFD               = 0x4020AE76 // _IOW(KVMIO, 0x76, struct kvm_irqfd)
	kvmCreatePIT2          = 0x4040AE77 // _IOW(KVMIO, 0x77, struct kvm_pit_config)
	kvmIOEventFD           = 0x4040AE79 // _IOW(KVMIO, 0x79, struct kvm_ioeventfd)
	kvmRun                 = 0xAE80     // _IO(KVMIO, 0x80)
	kvmGetRegs             = 0x8090AE81 // _IOR(KVMIO, 0x81, struct kvm_regs)
	kvmSetRegs             = 0x4090AE82 // _IOW(KVMIO, 0x82, struct kvm_regs)
	kvmGetSregs            = 0x8138AE83 // _IOR(KVMIO, 0x83, struct kvm_sregs)
	kvmSetSregs            = 0x4138AE84 // _IOW(KVMIO, 0x84, struct kvm_sregs)
	kvmSetMSRs             = 0x4008AE89 // _IOW(KVMIO, 0x89, struct kvm_msrs)
	kvmSetFPU              = 0x41A0AE8D // _IOW(KVMIO, 0x8d, struct kvm_fpu)
	kvmGetLAPIC            = 0x8400AE8E // _IOR(KVMIO, 0x8e, struct kvm_lapic_state)
	kvmSetLAPIC            = 0x4400AE8F // _IOW(KVMIO, 0x8f, struct kvm_lapic_state)
	kvmSetCPUID2           = 0x4008AE90 // _IOW(KVMIO, 0x90, struct kvm_cpuid2)
	kvmGetTSCKHz           = 0xAEA3     // _IO(KVMIO, 0xa3)
)

// ioctlNames gives each request a name for error messages and traces.
var ioctlNames = map[uintptr]string{
	kvmGetAPIVersion:       "KVM_GET_API_VERSION",
	kvmCreateVM:            "KVM_CREATE_VM",
	kvmCheckExtension:      "KVM_CHECK_EXTENSION",
	kvmGetVCPUMmapSize:     "KVM_GET_VCPU_MMAP_SIZE",
	kvmGetSupportedCPUID:   "KVM_GET_SUPPORTED_CPUID",
	kvmCreateVCPU:          "KVM_CREATE_VCPU",
	kvmSetUserMemoryRegion: "KVM_SET_USER_MEMORY_REGION",
	kvmSetTSSAddr:          "KVM_SET_TSS_ADDR",
	kvmSetIdentityMapAddr:  "KVM_SET_IDENTITY_MAP_ADDR",
	kvmCreateIRQChip:       "KVM_CREATE_IRQCHIP",
	kvmIRQLine:             "KVM_IRQ_LINE",
	kvmIRQFD:               "KVM_IRQFD",
	kvmCreatePIT2:          "KVM_CREATE_PIT2",
	kvmIOEventFD:           "KVM_IOEVENTFD",
	kvmRun:                 "KVM_RUN",
	kvmGetRegs:             "KVM_GET_REGS",
	kvmSetRegs:             "KVM_SET_REGS",
	kvmGetSregs:            "KVM_GET_SREGS",
	kvmSetSregs:            "KVM_SET_SREGS",
	kvmSetMSRs:             "KVM_SET_MSRS",
	kvmSetFPU:              "KVM_SET_FPU",
	kvmGetLAPIC:            "KVM_GET_LAPIC",
	kvmSetLAPIC:            "KVM_SET_LAPIC",
	kvmSetCPUID2:           "KVM_SET_CPUID2",
	kvmGetTSCKHz:           "KVM_GET_TSC_KHZ",
}

// IoctlName returns the KVM name of an ioctl request number.
func IoctlName(req uintptr) string {
	if n, ok := ioctlNames[req]; ok {
		return n
	}
	return "KVM ioctl"
}
