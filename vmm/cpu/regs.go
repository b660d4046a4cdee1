package cpu

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/kiln-vmm/kiln/boot"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/layout"
)

// Control register and EFER bits.
const (
	cr0PE   = 1 << 0  // protected mode
	cr0ET   = 1 << 4  // extension type (387 present)
	cr0PG   = 1 << 31 // paging
	cr4PAE  = 1 << 5  // physical address extension, needed by long mode
	eferLME = 1 << 8  // long mode enable
	eferLMA = 1 << 10 // long mode active
	rflags1 = 1 << 1  // RFLAGS bit 1 is always set

	pageP   = 1 << 0 // present
	pageRW  = 1 << 1 // writable
	pagePS  = 1 << 7 // 2 MiB page in a page directory entry
	hugeLen = 2 << 20
)

// GDT selectors: entry index times 8.
const (
	selCode = 1 * 8
	selData = 2 * 8
	selTSS  = 3 * 8
)

// gdtEntry packs a segment descriptor from its flags (access byte in bits
// 0-7, granularity and size in bits 12-15), base and 20-bit limit.
func gdtEntry(flags uint16, base, limit uint32) uint64 {
	return uint64(base&0xff000000)<<32 | uint64(flags&0xf0ff)<<40 |
		uint64(limit&0xf0000)<<32 | uint64(base&0x00ffffff)<<16 | uint64(limit&0xffff)
}

// segment unpacks a descriptor into KVM's segment form.
func segment(sel uint16, d uint64) kvm.Segment {
	s := kvm.Segment{
		Base:     (d>>16)&0xffffff | (d>>32)&0xff000000,
		Limit:    uint32(d&0xffff | (d>>32)&0xf0000),
		Selector: sel,
		Type:     uint8(d>>40) & 0xf,
		S:        uint8(d>>44) & 1,
		DPL:      uint8(d>>45) & 3,
		Present:  uint8(d>>47) & 1,
		AVL:      uint8(d>>52) & 1,
		L:        uint8(d>>53) & 1,
		DB:       uint8(d>>54) & 1,
		G:        uint8(d>>55) & 1,
	}
	if s.G == 1 {
		s.Limit = s.Limit<<12 | 0xfff
	}
	return s
}

// gdt returns the boot GDT: null, code (64-bit or 32-bit), data, TSS.
func gdt(longMode bool) []uint64 {
	code := gdtEntry(0xc09b, 0, 0xfffff) // 32-bit, 4 KiB granular, exec/read
	if longMode {
		code = gdtEntry(0xa09b, 0, 0xfffff) // L=1: 64-bit code
	}
	return []uint64{0, code, gdtEntry(0xc093, 0, 0xfffff), gdtEntry(0x808b, 0, 0xfffff)}
}

// writeTables writes the GDT, an empty IDT and, for long mode, page tables
// identity-mapping the first GiB with 2 MiB pages.
func writeTables(mem io.WriterAt, longMode bool) error {
	g := gdt(longMode)
	b := make([]byte, 8*len(g))
	for i, e := range g {
		binary.LittleEndian.PutUint64(b[8*i:], e)
	}
	if _, err := mem.WriteAt(b, layout.GDTAddr); err != nil {
		return fmt.Errorf("write GDT: %w", err)
	}
	if _, err := mem.WriteAt(make([]byte, 8), layout.IDTAddr); err != nil {
		return fmt.Errorf("write IDT: %w", err)
	}
	if !longMode {
		return nil
	}
	pml4 := make([]byte, 4096)
	binary.LittleEndian.PutUint64(pml4, layout.PDPT|pageP|pageRW)
	pdpt := make([]byte, 4096)
	binary.LittleEndian.PutUint64(pdpt, layout.PD|pageP|pageRW)
	pd := make([]byte, 4096)
	for i := 0; i < 512; i++ {
		binary.LittleEndian.PutUint64(pd[8*i:], uint64(i)*hugeLen|pageP|pageRW|pagePS)
	}
	for _, t := range []struct {
		addr int64
		b    []byte
	}{{layout.PML4, pml4}, {layout.PDPT, pdpt}, {layout.PD, pd}} {
		if _, err := mem.WriteAt(t.b, t.addr); err != nil {
			return fmt.Errorf("write page tables: %w", err)
		}
	}
	return nil
}

// EntrySregs returns the special registers for a boot protocol's entry,
// starting from the vCPU's current ones (which hold the APIC base).
func EntrySregs(s kvm.Sregs, p boot.Protocol) kvm.Sregs {
	long := p == boot.ProtocolLinux64
	g := gdt(long)
	s.CS = segment(selCode, g[1])
	data := segment(selData, g[2])
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = segment(selTSS, g[3])
	s.GDT = kvm.DTable{Base: layout.GDTAddr, Limit: uint16(8*len(g) - 1)}
	s.IDT = kvm.DTable{Base: layout.IDTAddr, Limit: 7}
	s.CR0 = cr0PE | cr0ET
	s.CR4, s.CR3, s.EFER = 0, 0, 0
	if long {
		s.CR0 |= cr0PG
		s.CR3 = layout.PML4
		s.CR4 = cr4PAE
		s.EFER = eferLME | eferLMA
	}
	return s
}

// EntryRegs returns the general registers at the kernel's entry point.
func EntryRegs(e boot.Entry) kvm.Regs {
	r := kvm.Regs{RIP: e.RIP, RFLAGS: rflags1}
	if e.Protocol == boot.ProtocolPVH {
		r.RBX = e.Params // EBX: physical address of struct hvm_start_info
	} else {
		r.RSI = e.Params // RSI: physical address of struct boot_params
		r.RSP, r.RBP = layout.BootStack, layout.BootStack
	}
	return r
}

// BootFPU is the x87/SSE state after FNINIT and LDMXCSR of the default.
func BootFPU() kvm.FPU { return kvm.FPU{FCW: 0x37f, MXCSR: 0x1f80} }

// Local APIC local vector table registers and delivery modes.
const (
	apicLVTLINT0 = 0x350
	apicLVTLINT1 = 0x360
	apicModeNMI  = 0x4
	apicModeExt  = 0x7
)

// SetLINTs wires LINT0 to the 8259 PIC (ExtINT) and LINT1 to NMI, as the
// MP table says, in a vCPU's local APIC state.
func SetLINTs(s *kvm.LAPICState) {
	set := func(off int, mode uint32) {
		v := binary.LittleEndian.Uint32(s.Regs[off:])
		v = v&^(0x7<<8) | mode<<8
		binary.LittleEndian.PutUint32(s.Regs[off:], v)
	}
	set(apicLVTLINT0, apicModeExt)
	set(apicLVTLINT1, apicModeNMI)
}

// Setup puts vCPU v at the kernel entry e: CPUID, MSRs, FPU, local APIC
// wiring, and for the boot vCPU (id 0) the entry registers. The other vCPUs
// wait for the boot CPU's INIT/SIPI, as on a real PC.
func Setup(v *kvm.VCPU, cpuid []kvm.CPUIDEntry, e boot.Entry) error {
	if err := v.SetCPUID(cpuid); err != nil {
		return fmt.Errorf("vCPU %d: %w", v.ID(), err)
	}
	if err := v.SetMSRs(BootMSRs()); err != nil {
		return fmt.Errorf("vCPU %d: %w", v.ID(), err)
	}
	if err := v.SetFPU(BootFPU()); err != nil {
		return fmt.Errorf("vCPU %d: %w", v.ID(), err)
	}
	lapic, err := v.LAPIC()
	if err != nil {
		return fmt.Errorf("vCPU %d: %w", v.ID(), err)
	}
	SetLINTs(lapic)
	if err := v.SetLAPIC(lapic); err != nil {
		return fmt.Errorf("vCPU %d: %w", v.ID(), err)
	}
	if v.ID() != 0 {
		return nil
	}
	s, err := v.Sregs()
	if err != nil {
		return fmt.Errorf("vCPU 0: %w", err)
	}
	if err := v.SetSregs(EntrySregs(s, e.Protocol)); err != nil {
		return fmt.Errorf("vCPU 0: %w", err)
	}
	if err := v.SetRegs(EntryRegs(e)); err != nil {
		return fmt.Errorf("vCPU 0: %w", err)
	}
	return nil
}

// WriteTables writes the descriptor tables (and page tables for long
// mode) that the entry state of protocol p refers to.
func WriteTables(mem io.WriterAt, p boot.Protocol) error {
	return writeTables(mem, p == boot.ProtocolLinux64)
}
