package serial

import (
	"fmt"
	"strconv"

	"github.com/kiln-vmm/kiln/devices"
)

// RegisterName names the register at offset off. On the 16550A the name
// depends on the direction and on the divisor latch bit (LCR.DLAB): offset
// 0 is RBR when read, THR when written, and DLL either way with DLAB set.
func RegisterName(off uint64, write, dlab bool) string {
	switch off {
	case RBR: // also THR and DLL
		switch {
		case dlab:
			return "DLL"
		case write:
			return "THR"
		}
		return "RBR"
	case IER: // also DLM
		if dlab {
			return "DLM"
		}
		return "IER"
	case IIR: // also FCR
		if write {
			return "FCR"
		}
		return "IIR"
	case LCR:
		return "LCR"
	case MCR:
		return "MCR"
	case LSR:
		return "LSR"
	case MSR:
		return "MSR"
	case SCR:
		return "SCR"
	}
	return fmt.Sprintf("offset %d", off)
}

// Describe says in words what a one-byte access at off did, for traces:
// "THR <- 'h'", "LSR -> 0x60 (THRE TEMT)". It reads the UART's current
// divisor latch bit, so call it right after the access.
func (u *UART) Describe(off uint64, write bool, data []byte) string {
	u.mu.Lock()
	dlab := u.lcr&LCRDLAB != 0
	u.mu.Unlock()
	name := RegisterName(off, write, dlab)
	if len(data) != 1 {
		return fmt.Sprintf("%s: %d-byte access ignored", name, len(data))
	}
	v := data[0]
	arrow := "->"
	if write {
		arrow = "<-"
	}
	switch name {
	case "THR", "RBR":
		return fmt.Sprintf("%s %s %s", name, arrow, strconv.QuoteRuneToASCII(rune(v)))
	case "IER":
		return withBits(name, arrow, v, ierBits)
	case "IIR":
		return fmt.Sprintf("%s %s %#02x (%s)", name, arrow, v, iirCause(v))
	case "LCR":
		return fmt.Sprintf("%s %s %#02x (%s)", name, arrow, v, lineSettings(v))
	case "MCR":
		return withBits(name, arrow, v, mcrBits)
	case "LSR":
		return withBits(name, arrow, v, lsrBits)
	case "MSR":
		return withBits(name, arrow, v, msrBits)
	}
	return fmt.Sprintf("%s %s %#02x", name, arrow, v)
}

// The names of register bits, lowest bit first.
var (
	ierBits = lowFirst("RDI", "THRI", "RLSI", "MSI")
	mcrBits = lowFirst("DTR", "RTS", "OUT1", "OUT2", "LOOP")
	lsrBits = lowFirst("DR", "OE", "PE", "FE", "BI", "THRE", "TEMT", "FIFOERR")
	msrBits = lowFirst("DCTS", "DDSR", "TERI", "DDCD", "CTS", "DSR", "RI", "DCD")
)

// lowFirst names bits 0, 1, 2, ... in turn.
func lowFirst(names ...string) []devices.Bit {
	bits := make([]devices.Bit, len(names))
	for i, n := range names {
		bits[i] = devices.Bit{Mask: 1 << i, Name: n}
	}
	return bits
}

// withBits prints a register value with the names of its set bits.
func withBits(name, arrow string, v byte, bits []devices.Bit) string {
	if set := devices.BitNames(uint64(v), bits, " ", ""); set != "" {
		return fmt.Sprintf("%s %s %#02x (%s)", name, arrow, v, set)
	}
	return fmt.Sprintf("%s %s %#02x", name, arrow, v)
}

// LCR bits that only traces look at; the UART itself ignores them.
const (
	lcrWordLength = 0x03   // data bits, less 5
	lcrTwoStop    = 1 << 2 // two stop bits
	lcrParity     = 1 << 3 // parity on
	lcrEvenParity = 1 << 4 // even parity, with lcrParity
	lcrBreak      = 1 << 6 // transmit a break
)

// lineSettings reads an LCR value the way serial settings are written:
// data bits, parity (None, Odd, Even) and stop bits, as in "8N1", then the
// break and divisor latch bits if set.
func lineSettings(v byte) string {
	parity := "N"
	if v&lcrParity != 0 {
		parity = "O"
		if v&lcrEvenParity != 0 {
			parity = "E"
		}
	}
	stop := 1
	if v&lcrTwoStop != 0 {
		stop = 2
	}
	s := fmt.Sprintf("%d%s%d", 5+v&lcrWordLength, parity, stop)
	if v&lcrBreak != 0 {
		s += " BREAK"
	}
	if v&LCRDLAB != 0 {
		s += " DLAB"
	}
	return s
}

// iirCause names the interrupt an IIR value reports.
func iirCause(v byte) string {
	switch v &^ IIRFIFOs {
	case IIRNone:
		return "no interrupt"
	case IIRTHRE:
		return "THR empty"
	case IIRRecv:
		return "data received"
	}
	return "other cause"
}
