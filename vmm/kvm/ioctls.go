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

	// Saving and restoring a VM's state (kiln snapshot).
	kvmGetMSRIndexList = 0xC004AE02 // _IOWR(KVMIO, 0x02, struct kvm_msr_list)
	kvmGetIRQChip      = 0xC208AE62 // _IOWR(KVMIO, 0x62, struct kvm_irqchip)
	kvmSetIRQChip      = 0x8208AE63 // _IOR(KVMIO, 0x63, struct kvm_irqchip), sic
	kvmSetClock        = 0x4030AE7B // _IOW(KVMIO, 0x7b, struct kvm_clock_data)
	kvmGetClock        = 0x8030AE7C // _IOR(KVMIO, 0x7c, struct kvm_clock_data)
	kvmGetMSRs         = 0xC008AE88 // _IOWR(KVMIO, 0x88, struct kvm_msrs)
	kvmGetMPState      = 0x8004AE98 // _IOR(KVMIO, 0x98, struct kvm_mp_state)
	kvmSetMPState      = 0x4004AE99 // _IOW(KVMIO, 0x99, struct kvm_mp_state)
	kvmGetPIT2         = 0x8070AE9F // _IOR(KVMIO, 0x9f, struct kvm_pit_state2)
	kvmSetPIT2         = 0x4070AEA0 // _IOW(KVMIO, 0xa0, struct kvm_pit_state2)
	kvmGetVCPUEvents   = 0x8040AE9F // _IOR(KVMIO, 0x9f, struct kvm_vcpu_events)
	kvmSetVCPUEvents   = 0x4040AEA0 // _IOW(KVMIO, 0xa0, struct kvm_vcpu_events)
	kvmGetDebugRegs    = 0x8080AEA1 // _IOR(KVMIO, 0xa1, struct kvm_debugregs)
	kvmSetDebugRegs    = 0x4080AEA2 // _IOW(KVMIO, 0xa2, struct kvm_debugregs)
	kvmSetTSCKHz       = 0xAEA2     // _IO(KVMIO, 0xa2)
	kvmGetXSave        = 0x9000AEA4 // _IOR(KVMIO, 0xa4, struct kvm_xsave)
	kvmSetXSave        = 0x5000AEA5 // _IOW(KVMIO, 0xa5, struct kvm_xsave)
	kvmGetXCRs         = 0x8188AEA6 // _IOR(KVMIO, 0xa6, struct kvm_xcrs)
	kvmSetXCRs         = 0x4188AEA7 // _IOW(KVMIO, 0xa7, struct kvm_xcrs)
	kvmKVMClockCtrl    = 0xAEAD     // _IO(KVMIO, 0xad)
)

// Requests made once the VM runs, named for vmm/seccomp, whose filters
// allow exactly these KVM ioctls after setup: every other request above
// builds or restores a VM, before the filters go on.
const (
	// A vCPU's thread, on its own vCPU: entering the guest, and reading
	// registers for error messages and --trace.
	IoctlRun      = kvmRun
	IoctlGetRegs  = kvmGetRegs
	IoctlGetSregs = kvmGetSregs
	// The VM's: the serial port's interrupt line, raised by the vCPU
	// that writes the port and by the console's input.
	IoctlIRQLine = kvmIRQLine
	// Pausing for a snapshot: each vCPU saves itself on its own thread...
	IoctlGetMPState    = kvmGetMPState
	IoctlGetXSave      = kvmGetXSave
	IoctlGetXCRs       = kvmGetXCRs
	IoctlGetDebugRegs  = kvmGetDebugRegs
	IoctlGetLAPIC      = kvmGetLAPIC
	IoctlGetTSCKHz     = kvmGetTSCKHz
	IoctlGetMSRs       = kvmGetMSRs
	IoctlGetVCPUEvents = kvmGetVCPUEvents
	// ... then the VM's in-kernel devices are read.
	IoctlGetPIT2    = kvmGetPIT2
	IoctlGetClock   = kvmGetClock
	IoctlGetIRQChip = kvmGetIRQChip
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
	kvmGetMSRIndexList:     "KVM_GET_MSR_INDEX_LIST",
	kvmGetIRQChip:          "KVM_GET_IRQCHIP",
	kvmSetIRQChip:          "KVM_SET_IRQCHIP",
	kvmSetClock:            "KVM_SET_CLOCK",
	kvmGetClock:            "KVM_GET_CLOCK",
	kvmGetMSRs:             "KVM_GET_MSRS",
	kvmGetMPState:          "KVM_GET_MP_STATE",
	kvmSetMPState:          "KVM_SET_MP_STATE",
	kvmGetPIT2:             "KVM_GET_PIT2",
	kvmSetPIT2:             "KVM_SET_PIT2",
	kvmGetVCPUEvents:       "KVM_GET_VCPU_EVENTS",
	kvmSetVCPUEvents:       "KVM_SET_VCPU_EVENTS",
	kvmGetDebugRegs:        "KVM_GET_DEBUGREGS",
	kvmSetDebugRegs:        "KVM_SET_DEBUGREGS",
	kvmSetTSCKHz:           "KVM_SET_TSC_KHZ",
	kvmGetXSave:            "KVM_GET_XSAVE",
	kvmSetXSave:            "KVM_SET_XSAVE",
	kvmGetXCRs:             "KVM_GET_XCRS",
	kvmSetXCRs:             "KVM_SET_XCRS",
	kvmKVMClockCtrl:        "KVM_KVMCLOCK_CTRL",
}

// IoctlName returns the KVM name of an ioctl request number.
func IoctlName(req uintptr) string {
	if n, ok := ioctlNames[req]; ok {
		return n
	}
	return "KVM ioctl"
}
