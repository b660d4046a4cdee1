#include "go_asm.h"
#include "textflag.h"

// The SIGSYS handler (report.go). The kernel calls it as a C function:
// DI is the signal number, SI the siginfo_t, DX the ucontext_t. It runs on
// the thread's signal stack (SA_ONSTACK) with every signal blocked, and
// never returns: it writes the report and ends kiln. It needs no stack
// and no Go runtime, only registers, the tables in report.go, and system
// calls every filter allows: gettid, writev (or write) and exit_group.

#define SYS_write		1
#define SYS_ioctl		16
#define SYS_rt_sigreturn	15
#define SYS_writev		20
#define SYS_gettid		186
#define SYS_exit_group		231

#define SYS_SECCOMP		1	// si_code of a seccomp refusal

// AUDIT_ARCH_X86_64, as a signed 32-bit immediate (0xc000003e).
#define AUDIT_ARCH_X86_64	-1073741762

// func sigsys()
TEXT ·sigsys(SB),NOSPLIT|NOFRAME,$0-0
	// One report: the first thread here writes it and ends kiln; any
	// other spins until exit_group takes it too.
	MOVL	$1, AX
	XCHGL	AX, ·reportBusy(SB)
	TESTL	AX, AX
	JNE	wait

	// siginfo_t for SIGSYS (include/uapi/asm-generic/siginfo.h):
	// si_code (offset 8) is SYS_SECCOMP for a filter's refusal, anything
	// else for a SIGSYS another process sent; si_errno (4) is the
	// refusing filter's SECCOMP_RET_DATA; _sigsys._syscall (24) the
	// call's number, _sigsys._arch (28) its ABI.
	CMPL	8(SI), $SYS_SECCOMP
	JNE	foreign
	MOVL	4(SI), R8
	MOVL	24(SI), R9
	MOVL	28(SI), R10
	MOVQ	DX, R12

	// iovec 0: the head that names the thread's filter.
	CMPQ	R8, $const_numHeads
	JB	head
	XORL	R8, R8
head:
	SHLQ	$4, R8
	MOVQ	$·reportHeads(SB), R11
	MOVQ	0(R11)(R8*1), AX
	MOVQ	AX, ·reportIov+0(SB)
	MOVQ	8(R11)(R8*1), AX
	MOVQ	AX, ·reportIov+8(SB)

	// iovec 1: the thread's id, in decimal, written backwards.
	MOVL	$SYS_gettid, AX
	SYSCALL
	MOVQ	$·reportTid+24(SB), DI
	MOVQ	DI, R13
	MOVQ	$10, CX
decimal:
	XORL	DX, DX
	DIVQ	CX
	ADDQ	$48, DX // '0'
	SUBQ	$1, DI
	MOVB	DX, 0(DI)
	TESTQ	AX, AX
	JNE	decimal
	MOVQ	DI, ·reportIov+16(SB)
	SUBQ	DI, R13
	MOVQ	R13, ·reportIov+24(SB)

	// iovec 2: " called NAME (NR)"; another ABI's call, or a number past
	// the table, takes the table's last entry.
	CMPL	R10, $AUDIT_ARCH_X86_64
	JNE	unknown
	CMPQ	R9, $const_numCalls
	JB	known
unknown:
	MOVQ	$const_numCalls, R9
known:
	MOVQ	R9, R10
	SHLQ	$4, R9
	MOVQ	$·reportCalls(SB), R11
	MOVQ	0(R11)(R9*1), AX
	MOVQ	AX, ·reportIov+32(SB)
	MOVQ	8(R11)(R9*1), AX
	MOVQ	AX, ·reportIov+40(SB)
	MOVQ	$3, BX

	// iovecs 3 and 4, for ioctl: " with request 0x" and the request, the
	// call's second argument: RSI among the registers the kernel saved,
	// uc_mcontext.gregs[REG_RSI] at 40+9*8 in the ucontext_t.
	CMPQ	R10, $SYS_ioctl
	JNE	tail
	MOVQ	·reportReq+0(SB), AX
	MOVQ	AX, ·reportIov+48(SB)
	MOVQ	·reportReq+8(SB), AX
	MOVQ	AX, ·reportIov+56(SB)
	MOVQ	112(R12), AX
	MOVQ	$·reportHex+16(SB), DI
	MOVQ	DI, R13
	MOVQ	$·hexDigits(SB), R11
hex:
	MOVQ	AX, DX
	ANDQ	$15, DX
	MOVBQZX	0(R11)(DX*1), DX
	SUBQ	$1, DI
	MOVB	DX, 0(DI)
	SHRQ	$4, AX
	JNE	hex
	MOVQ	DI, ·reportIov+64(SB)
	SUBQ	DI, R13
	MOVQ	R13, ·reportIov+72(SB)
	MOVQ	$5, BX

tail:
	// The last iovec: ", which its filter does not allow\n".
	MOVQ	BX, AX
	SHLQ	$4, AX
	MOVQ	$·reportIov(SB), R11
	MOVQ	·reportTail+0(SB), DX
	MOVQ	DX, 0(R11)(AX*1)
	MOVQ	·reportTail+8(SB), DX
	MOVQ	DX, 8(R11)(AX*1)
	ADDQ	$1, BX

	// writev(2, reportIov, BX), then exit_group(ExitCode).
	MOVL	$2, DI
	MOVQ	$·reportIov(SB), SI
	MOVQ	BX, DX
	MOVL	$SYS_writev, AX
	SYSCALL
	MOVL	$const_ExitCode, DI
	MOVL	$SYS_exit_group, AX
	SYSCALL
	// Not reached.

foreign:
	// Not a refusal: kiln ends as SIGSYS would end it, with a line.
	MOVL	$2, DI
	MOVQ	·reportForeign+0(SB), SI
	MOVQ	·reportForeign+8(SB), DX
	MOVL	$SYS_write, AX
	SYSCALL
	MOVL	$const_ExitCode, DI
	MOVL	$SYS_exit_group, AX
	SYSCALL

wait:
	PAUSE
	JMP	wait

// func sigreturn()
TEXT ·sigreturn(SB),NOSPLIT|NOFRAME,$0-0
	MOVL	$SYS_rt_sigreturn, AX
	SYSCALL
	INT	$3

// func handlerAddrs() (handler, restorer uintptr)
TEXT ·handlerAddrs(SB),NOSPLIT,$0-16
	MOVQ	$·sigsys(SB), AX
	MOVQ	AX, handler+0(FP)
	MOVQ	$·sigreturn(SB), AX
	MOVQ	AX, restorer+8(FP)
	RET
