package trace

import (
	"fmt"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// Register bits that say what mode the processor is in (Intel SDM vol. 3A,
// 2.5 "Control registers" and 2.2.1 "Extended feature enable register").
const (
	cr0PE    = 1 << 0  // protected mode
	cr0PG    = 1 << 31 // paging
	eferLMA  = 1 << 10 // long mode active
	rflagsIF = 1 << 9  // interrupts enabled
)

// mode names the processor's operating mode from its special registers:
// real mode until CR0.PE, then protected mode (16- or 32-bit by CS.D),
// and with EFER.LMA long mode, 64-bit where CS.L is set.
func mode(s kvm.Sregs) string {
	paging := ""
	if s.CR0&cr0PG == 0 {
		paging = ", paging off"
	}
	switch {
	case s.CR0&cr0PE == 0:
		return "real mode"
	case s.EFER&eferLMA != 0 && s.CS.L == 1:
		return fmt.Sprintf("64-bit mode, ring %d", s.CS.DPL)
	case s.EFER&eferLMA != 0:
		return fmt.Sprintf("compatibility mode, ring %d", s.CS.DPL)
	case s.CS.DB == 1:
		return fmt.Sprintf("32-bit protected mode, ring %d%s", s.CS.DPL, paging)
	}
	return fmt.Sprintf("16-bit protected mode, ring %d%s", s.CS.DPL, paging)
}

// String prints where the vCPU was: the instruction and stack pointers,
// whether interrupts were on, the mode, the general-purpose registers a
// kernel's calling convention uses, and the control registers.
func (c *CPUState) String() string {
	r, s := c.Regs, c.Sregs
	intr := "interrupts off"
	if r.RFLAGS&rflagsIF != 0 {
		intr = "interrupts on"
	}
	return fmt.Sprintf("rip %#x rsp %#x rflags %#x (%s) cs %#x (%s) "+
		"rax %#x rbx %#x rcx %#x rdx %#x rsi %#x rdi %#x rbp %#x "+
		"cr0 %#x cr2 %#x cr3 %#x cr4 %#x efer %#x",
		r.RIP, r.RSP, r.RFLAGS, intr, s.CS.Selector, mode(s),
		r.RAX, r.RBX, r.RCX, r.RDX, r.RSI, r.RDI, r.RBP,
		s.CR0, s.CR2, s.CR3, s.CR4, s.EFER)
}
