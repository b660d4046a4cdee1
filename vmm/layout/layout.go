// Package layout is the one place where kiln's guest addresses are chosen:
// the guest-physical memory map and the I/O ports of every device.
//
// An x86 PC guest sees a physical address space shaped by history:
//
//	0x0000_0000  real-mode area: IVT, BIOS data, then free low memory
//	0x0000_0500  GDT and IDT used to enter the kernel
//	0x0000_6000  PVH start info, module list and memory map
//	0x0000_7000  zero page (struct boot_params) for the bzImage protocol
//	0x0000_9000  identity-mapping page tables (PML4, PDPT, PD)
//	0x0002_0000  kernel command line
//	0x0009_fc00  MP table, in the last KiB below 640 KiB where Linux scans
//	0x000a_0000  legacy VGA and BIOS ROM hole (reserved)
//	0x0010_0000  high memory: the kernel is loaded at 1 MiB (bzImage) or
//	             at its ELF physical addresses (PVH, usually 16 MiB)
//	...          RAM up to MMIOStart, initrd at its top
//	0xd000_0000  MMIO gap: virtio-mmio devices, IOAPIC, local APIC
//	0x1_0000_0000 RAM above 4 GiB, if the guest has more than MMIOStart
//
// Firecracker keeps the same kind of table in arch/x86_64/layout.rs.
package layout

import "github.com/kiln-vmm/kiln/guest/contract"

const (
	// GDTAddr holds the boot GDT: null, code, data and TSS descriptors.
	GDTAddr = 0x500
	// IDTAddr holds an empty IDT; the kernel installs its own early.
	IDTAddr = 0x520

	// PVHStartInfo is struct hvm_start_info for the PVH boot protocol.
	PVHStartInfo = 0x6000
	// PVHModList is the PVH module list (one entry: the initrd).
	PVHModList = 0x6040
	// PVHMemMap is the PVH memory map (struct hvm_memmap_table_entry[]).
	PVHMemMap = 0x6100
	// PVHMemMapMax is how many memory map entries fit before ZeroPage.
	PVHMemMapMax = (ZeroPage - PVHMemMap) / 24

	// ZeroPage is struct boot_params for the Linux x86 boot protocol.
	ZeroPage = 0x7000
	// BootStack is the initial stack pointer for a 64-bit bzImage entry.
	BootStack = 0x8ff0

	// PML4, PDPT and PD are the page tables that identity-map the first
	// GiB with 2 MiB pages for a 64-bit entry.
	PML4 = 0x9000
	PDPT = 0xa000
	PD   = 0xb000

	// CmdlineAddr and CmdlineMax: the kernel command line, NUL-terminated.
	CmdlineAddr = 0x20000
	CmdlineMax  = 4096

	// MPTableAddr is where the MP floating pointer and table are written:
	// the last KiB below 640 KiB, where a PC's BIOS keeps its extended data
	// area (EBDA) and Linux scans for the table. The memory map reserves
	// from here to HighMemory.
	MPTableAddr = 0x9fc00

	// HighMemory is the first byte above the legacy 1 MiB area.
	HighMemory = 0x100000
	// BzImageLoadAddr is where a bzImage's protected-mode code goes.
	BzImageLoadAddr = HighMemory

	// MMIOStart begins the 32-bit MMIO gap; RAM past it moves above 4 GiB.
	MMIOStart = 0xd0000000
	// HighRAMStart is where RAM resumes above the MMIO gap.
	HighRAMStart = 0x1_0000_0000

	// VirtioMMIOBase is the first virtio-mmio device window;
	// VirtioMMIOSize is the size of each, one after another.
	VirtioMMIOBase = MMIOStart
	VirtioMMIOSize = 0x1000

	// IOAPICAddr and LAPICAddr are the interrupt controllers' registers.
	IOAPICAddr = 0xfec00000
	LAPICAddr  = 0xfee00000

	// TSSAddr (three pages) and IdentityMapAddr (one page) are for KVM's
	// own use on Intel VT; they sit just below the 4 GiB BIOS area.
	TSSAddr         = 0xfffbd000
	IdentityMapAddr = 0xfffbc000
)

// I/O ports and interrupt lines of the legacy devices.
const (
	// COM1 is the first 16550 UART, the guest console (ttyS0).
	COM1Port = 0x3f8
	COM1IRQ  = 4
	UARTSize = 8

	// I8042DataPort and I8042CommandPort are the keyboard controller,
	// used by the guest to reset the machine (reboot=k); I8042Size spans
	// both.
	I8042DataPort    = 0x60
	I8042CommandPort = 0x64
	I8042Size        = I8042CommandPort - I8042DataPort + 1

	// SignalPort is kiln's boot-signal device (devices/bootsignal), through
	// which the guest's init reports and reads its job. Its place is part
	// of the guest-host contract, which the guest's init imports too.
	SignalPort = contract.SignalPort
	SignalSize = contract.SignalSize

	// IRQs 5 and up are free for virtio-mmio devices.
	FirstVirtioIRQ = 5
	LastVirtioIRQ  = 23
)

// Region is a range of guest-physical RAM.
type Region struct {
	Addr, Size uint64
}

// End returns the first address past the region.
func (r Region) End() uint64 { return r.Addr + r.Size }

// RAMRegions splits memSize bytes of guest RAM around the MMIO gap.
func RAMRegions(memSize uint64) []Region {
	if memSize <= MMIOStart {
		return []Region{{0, memSize}}
	}
	return []Region{{0, MMIOStart}, {HighRAMStart, memSize - MMIOStart}}
}
