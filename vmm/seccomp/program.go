package seccomp

import (
	"fmt"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The program a filter assembles into, for a list that allows KVM_RUN
// on descriptor 12, and futex (x/net/bpf's disassembly, annotated):
//
//	 0  ld [4]                   A = seccomp_data.arch
//	 1  jeq #0xc000003e, +1      x86-64?
//	 2  ret #TRAP|data           no: another ABI (i386's int 0x80)
//	 3  ld [0]                   A = seccomp_data.nr
//	 4  jge #0x40000000, +0, +1  one of x32's numbers?
//	 5  ret #TRAP|data           yes
//	 6  jeq #16, +1              ioctl?
//	 7  ja +10                   no: on to the next call (18)
//	 8  ld [20]                  A = args[0], high half
//	 9  jne #0, +7               not 12: the next alternative (none: 17)
//	10  ld [16]                  A = args[0], low half
//	11  jne #12, +5
//	12  ld [28]                  A = args[1], high half
//	13  jne #0, +3
//	14  ld [24]                  A = args[1], low half
//	15  jne #0xae80, +1          KVM_RUN?
//	16  ret #ALLOW               every condition held
//	17  ret #TRAP|data           no alternative held
//	18  jeq #202, +1             futex? (a jeq for each call allowed outright)
//	19  ret #TRAP|data           none of them
//	20  ret #ALLOW
//
// A program sees the call as struct seccomp_data (linux/seccomp.h): nr
// (offset 0), arch (4), instruction_pointer (8), args[6] (16, 8 bytes
// each). Its loads are 32 bits wide, so a 64-bit argument is checked in
// two halves, the high one too: the kernel may truncate an int argument
// to 32 bits, but a filter that checked only the low half would let
// through values the caller did not mean.
//
// Once a condition has loaded an argument, A no longer holds the call's
// number: a call whose alternatives all fail is refused right there,
// never compared with the numbers that follow. (Policy.Assemble of
// github.com/elastic/go-seccomp-bpf v1.6.0 falls through instead, so that
// clone(17) would pass as pread64, system call 17: kiln uses only that
// library's system call table; TestLibraryFallsThrough shows the bug.)

const (
	auditArchX86_64 = 0xc000003e // AUDIT_ARCH_X86_64
	x32Bit          = 0x40000000 // __X32_SYSCALL_BIT
	argsOffset      = 16         // seccomp_data.args
)

// assemble builds the program for rules, refusing with the action refuse.
func assemble(rules []rule, refuse uint32) ([]bpf.Instruction, error) {
	deny := bpf.RetConstant{Val: refuse}
	allow := bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW}
	conditional, plain, err := sortRules(rules)
	if err != nil {
		return nil, err
	}
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArchX86_64, SkipTrue: 1},
		deny,
		bpf.LoadAbsolute{Off: 0, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1},
		deny,
	}
	for _, c := range conditional {
		var block []bpf.Instruction
		for _, alt := range c.alternatives {
			a, err := alternative(alt, allow)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", c.name, err)
			}
			block = append(block, a...)
		}
		block = append(block, deny)
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: c.nr, SkipTrue: 1},
			bpf.Jump{Skip: uint32(len(block))})
		prog = append(prog, block...)
	}
	if len(plain) > 255 {
		return nil, fmt.Errorf("%d calls without conditions, more than one jump reaches", len(plain))
	}
	for i, nr := range plain {
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipTrue: uint8(len(plain) - i)})
	}
	prog = append(prog, deny, allow)
	if len(prog) > bpfMaxInstructions {
		return nil, fmt.Errorf("%d instructions, more than the kernel's %d", len(prog), bpfMaxInstructions)
	}
	return prog, nil
}

// bpfMaxInstructions is BPF_MAXINSNS, the longest program seccomp takes.
const bpfMaxInstructions = 4096

// alternative checks that every condition holds, and allows the call if
// they do; if one does not, it jumps past its end, to the next.
func alternative(conds []cond, allow bpf.Instruction) ([]bpf.Instruction, error) {
	var a []bpf.Instruction
	var fails []int // the jumps to the end
	for _, c := range conds {
		if c.arg > 5 {
			return nil, fmt.Errorf("argument %d: a system call has six", c.arg)
		}
		lo := argsOffset + 8*c.arg
		hi, lov := uint32(c.val>>32), uint32(c.val)
		a = append(a, bpf.LoadAbsolute{Off: lo + 4, Size: 4})
		if c.ne {
			// The high halves differ: the argument is not val, go on
			// past the low half's check. They are equal: then the low
			// halves must differ.
			a = append(a, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: hi, SkipTrue: 2},
				bpf.LoadAbsolute{Off: lo, Size: 4})
			fails = append(fails, len(a))
			a = append(a, bpf.JumpIf{Cond: bpf.JumpEqual, Val: lov})
			continue
		}
		fails = append(fails, len(a))
		a = append(a, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: hi}, bpf.LoadAbsolute{Off: lo, Size: 4})
		fails = append(fails, len(a))
		a = append(a, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: lov})
	}
	a = append(a, allow)
	for _, i := range fails {
		j := a[i].(bpf.JumpIf)
		j.SkipTrue = uint8(len(a) - i - 1)
		a[i] = j
	}
	return a, nil
}

// conditional is a call allowed when any of its alternatives holds.
type conditional struct {
	name         string
	nr           uint32
	alternatives [][]cond
}

// sortRules splits rules into calls with conditions on their arguments,
// in the lists' order (ioctl, with KVM_RUN first, leads the vCPU's: the
// hot path), and calls allowed whatever their arguments, which the kernel
// caches as always allowed (Linux 5.11 and later) without running the
// program at all. A call one list allows outright needs no conditions.
func sortRules(rules []rule) (conds []conditional, plain []uint32, err error) {
	always := map[string]bool{}
	for _, r := range rules {
		if len(r.when) == 0 {
			always[r.name] = true
		}
	}
	index := map[string]int{}
	seen := map[string]bool{}
	for _, r := range rules {
		nr, ok := arch.X86_64.SyscallNames[r.name]
		if !ok {
			return nil, nil, fmt.Errorf("no system call %q on x86-64", r.name)
		}
		switch {
		case always[r.name]:
			if !seen[r.name] {
				plain = append(plain, uint32(nr))
			}
		case seen[r.name]:
			conds[index[r.name]].alternatives = append(conds[index[r.name]].alternatives, r.when)
		default:
			index[r.name] = len(conds)
			conds = append(conds, conditional{name: r.name, nr: uint32(nr), alternatives: [][]cond{r.when}})
		}
		seen[r.name] = true
	}
	return conds, plain, nil
}
