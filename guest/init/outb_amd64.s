#include "textflag.h"

// func outb(port uint16, val uint8)
TEXT ·outb(SB), NOSPLIT, $0-3
	MOVW port+0(FP), DX
	MOVB val+2(FP), AX
	OUTB
	RET

// func insb(port uint16, buf []byte)
// REP INSB: reads len(buf) bytes from one port into buf. KVM hands a
// string I/O to the VMM a page at a time: one exit where a loop of INB
// would take one per byte.
TEXT ·insb(SB), NOSPLIT, $0-32
	MOVW port+0(FP), DX
	MOVQ buf_base+8(FP), DI
	MOVQ buf_len+16(FP), CX
	CLD
	REP; INSB
	RET
