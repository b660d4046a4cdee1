package kvm

// Go mirrors of the x86-64 structures in include/uapi/linux/kvm.h and
// arch/x86/include/uapi/asm/kvm.h. Field order and sizes must match the C
// layout exactly: the kernel reads and writes them as raw bytes.

// Regs is struct kvm_regs: the general-purpose registers.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment is struct kvm_segment: a segment register with its hidden part
// (base, limit and attributes that the CPU caches from a descriptor).
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8
	Present  uint8
	DPL      uint8
	DB       uint8 // default operand size: 1 for 32-bit
	S        uint8 // 1 for code/data, 0 for system segments
	L        uint8 // 1 for 64-bit code
	G        uint8 // limit granularity: 1 for 4 KiB units
	AVL      uint8
	Unusable uint8
	_        uint8
}

// DTable is struct kvm_dtable: a descriptor-table register (GDTR, IDTR).
type DTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// Sregs is struct kvm_sregs: segment, control and descriptor-table registers.
type Sregs struct {
	CS, DS, ES, FS, GS, SS Segment
	TR, LDT                Segment
	GDT, IDT               DTable
	CR0, CR2, CR3, CR4     uint64
	CR8                    uint64
	EFER                   uint64
	APICBase               uint64
	InterruptBitmap        [4]uint64
}

// FPU is struct kvm_fpu: x87 and SSE state.
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	_          uint32
}

// CPUIDEntry is struct kvm_cpuid_entry2: one CPUID leaf (and subleaf).
type CPUIDEntry struct {
	Function uint32
	Index    uint32
	Flags    uint32
	EAX      uint32
	EBX      uint32
	ECX      uint32
	EDX      uint32
	_        [3]uint32
}

// CPUIDFlagSignificantIndex marks leaves whose subleaf (ECX input) matters.
const CPUIDFlagSignificantIndex = 1

// maxCPUIDEntries bounds the CPUID table; KVM reports E2BIG past its own.
const maxCPUIDEntries = 256

// cpuid2 is struct kvm_cpuid2 with room for maxCPUIDEntries entries.
type cpuid2 struct {
	NEnt    uint32
	_       uint32
	Entries [maxCPUIDEntries]CPUIDEntry
}

// MSR is struct kvm_msr_entry: one model-specific register and its value.
type MSR struct {
	Index uint32
	_     uint32
	Data  uint64
}

const maxMSRs = 64

// msrs is struct kvm_msrs with room for maxMSRs entries.
type msrs struct {
	NMSRs   uint32
	_       uint32
	Entries [maxMSRs]MSR
}

// userspaceMemoryRegion is struct kvm_userspace_memory_region.
type userspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

// irqLevel is struct kvm_irq_level.
type irqLevel struct {
	IRQ   uint32
	Level uint32
}

// pitConfig is struct kvm_pit_config.
type pitConfig struct {
	Flags uint32
	_     [15]uint32
}

// pitSpeakerDummy asks KVM to emulate a dummy PC speaker on port 0x61.
const pitSpeakerDummy = 1

// LAPICState is struct kvm_lapic_state: the local APIC's 1 KiB register page.
type LAPICState struct {
	Regs [1024]byte
}

// irqfd is struct kvm_irqfd.
type irqfd struct {
	FD         uint32
	GSI        uint32
	Flags      uint32
	ResampleFD uint32
	_          [16]uint8
}

// ioeventfd is struct kvm_ioeventfd.
type ioeventfd struct {
	Datamatch uint64
	Addr      uint64
	Len       uint32
	FD        int32
	Flags     uint32
	_         [36]uint8
}

// The state a snapshot saves. Where kiln only stores and restores a
// structure, never looking inside, it keeps the C layout as bytes.

// MPState is struct kvm_mp_state: whether a vCPU runs, halts, or waits
// for its start-up IPI (KVM_MP_STATE_*).
type MPState struct {
	State uint32
}

// ClockData is struct kvm_clock_data: the VM's kvmclock, in nanoseconds.
type ClockData struct {
	Clock    uint64
	Flags    uint32
	_        uint32
	Realtime uint64
	HostTSC  uint64
	_        [4]uint32
}

// IRQChip is struct kvm_irqchip: the state of one in-kernel interrupt
// controller, chosen by ChipID: the master PIC, the slave PIC, the IOAPIC.
type IRQChip struct {
	ChipID uint32
	_      uint32
	State  [512]byte
}

// The ChipID values (KVM_IRQCHIP_*).
const (
	IRQChipPICMaster = 0
	IRQChipPICSlave  = 1
	IRQChipIOAPIC    = 2
)

// PITState2 is struct kvm_pit_state2: the 8254's three channels and flags.
type PITState2 struct {
	State [112]byte
}

// VCPUEvents is struct kvm_vcpu_events: exceptions, interrupts and NMIs
// pending or being injected, and the interrupt shadow.
type VCPUEvents struct {
	State [64]byte
}

// DebugRegs is struct kvm_debugregs: DR0-DR3, DR6 and DR7.
type DebugRegs struct {
	DB    [4]uint64
	DR6   uint64
	DR7   uint64
	Flags uint64
	_     [9]uint64
}

// XSave is struct kvm_xsave: the FPU, SSE and AVX state in the XSAVE
// area's layout (4 KiB; KVM_GET_XSAVE2 would be needed for larger areas).
type XSave struct {
	Region [1024]uint32
}

// XCR is one extended control register (XCR0 holds the XSAVE features).
type XCR struct {
	XCR   uint32
	_     uint32
	Value uint64
}

// XCRs is struct kvm_xcrs.
type XCRs struct {
	NXCRs uint32
	Flags uint32
	XCRs  [16]XCR
	_     [16]uint64
}

// maxMSRIndices bounds KVM_GET_MSR_INDEX_LIST (KVM lists about a hundred
// on current hosts).
const maxMSRIndices = 1024

// msrList is struct kvm_msr_list with room for maxMSRIndices indices.
type msrList struct {
	NMSRs   uint32
	Indices [maxMSRIndices]uint32
}
