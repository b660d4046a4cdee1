// Package serial emulates a 16550A UART, the PC's serial port, which the
// guest kernel uses as its console (ttyS0 on COM1, port 0x3f8, IRQ 4).
//
// The UART has eight byte-wide registers. Writing the transmit holding
// register (THR) sends a byte; here it goes straight to an io.Writer, so the
// transmitter is always empty again at once. Received bytes wait in a FIFO
// until the guest reads the receive buffer (RBR). The line status register
// (LSR) says whether data is waiting and whether THR is free. Interrupts are
// enabled per cause in IER; IIR names the highest-priority pending one:
// receiver line status, received data, THR empty, modem status. Setting
// DLAB in LCR turns offsets 0 and 1 into the baud-rate divisor. In loopback
// mode (MCR bit 4) transmitted bytes come back as received ones and the
// modem control outputs appear as modem status inputs; Linux's 8250 driver
// uses both to detect the chip.
//
// Reference: the National Semiconductor PC16550D datasheet; rust-vmm's
// vm-superio serial.rs is the model for this shape.
package serial

import (
	"io"
	"sync"

	"github.com/kiln-vmm/kiln/devices"
)

// Register offsets from the UART's base port.
const (
	RBR = 0 // receive buffer (read, DLAB=0)
	THR = 0 // transmit holding (write, DLAB=0)
	DLL = 0 // divisor latch low (DLAB=1)
	IER = 1 // interrupt enable (DLAB=0)
	DLM = 1 // divisor latch high (DLAB=1)
	IIR = 2 // interrupt identification (read)
	FCR = 2 // FIFO control (write)
	LCR = 3 // line control
	MCR = 4 // modem control
	LSR = 5 // line status
	MSR = 6 // modem status
	SCR = 7 // scratch
)

// Register bits.
const (
	IERRecv  = 1 << 0 // interrupt when data is received
	IERTHRE  = 1 << 1 // interrupt when THR is empty
	IERLine  = 1 << 2 // interrupt on receiver line status
	IERModem = 1 << 3 // interrupt on modem status change
	ierMask  = 0x0f

	IIRNone  = 0x01 // no interrupt pending
	IIRTHRE  = 0x02 // THR empty
	IIRRecv  = 0x04 // received data available
	IIRFIFOs = 0xc0 // FIFOs enabled (reads as a 16550A)

	LCRDLAB = 1 << 7 // divisor latch access

	MCRDTR  = 1 << 0
	MCRRTS  = 1 << 1
	MCROut1 = 1 << 2
	MCROut2 = 1 << 3
	MCRLoop = 1 << 4

	LSRDataReady = 1 << 0
	LSRTHRE      = 1 << 5 // THR empty
	LSRTEMT      = 1 << 6 // transmitter empty

	MSRCTS = 1 << 4
	MSRDSR = 1 << 5
	MSRRI  = 1 << 6
	MSRDCD = 1 << 7
)

// FIFOSize is how many received bytes the UART holds for the guest.
const FIFOSize = 64

// UART is one 16550A.
type UART struct {
	mu  sync.Mutex
	irq devices.Interrupt
	out io.Writer

	ier, lcr, mcr, scr byte
	dll, dlm           byte
	threPending        bool // THR-empty interrupt waiting for IIR read or THR write
	rx                 []byte

	space     chan struct{} // signalled when the guest drains the FIFO
	rxEnabled chan struct{} // closed when the guest first enables RX interrupts
}

// New returns a UART that sends transmitted bytes to out and raises irq.
func New(irq devices.Interrupt, out io.Writer) *UART {
	return &UART{
		irq:       irq,
		out:       out,
		mcr:       MCROut2,
		dll:       12, // 9600 baud, the reset value
		space:     make(chan struct{}, 1),
		rxEnabled: make(chan struct{}),
	}
}

// Read implements bus.Device.
func (u *UART) Read(off uint64, data []byte) {
	if !devices.ByteAccess(data, 0) {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	data[0] = u.readReg(off)
}

func (u *UART) readReg(off uint64) byte {
	switch off {
	case RBR:
		if u.lcr&LCRDLAB != 0 {
			return u.dll
		}
		if len(u.rx) == 0 {
			return 0
		}
		b := u.rx[0]
		u.rx = u.rx[1:]
		if len(u.rx) == 0 {
			u.signalSpace()
		}
		return b
	case IER:
		if u.lcr&LCRDLAB != 0 {
			return u.dlm
		}
		return u.ier
	case IIR:
		id := u.pending()
		if id == IIRTHRE {
			u.threPending = false // reading IIR acknowledges THR empty
		}
		return id | IIRFIFOs
	case LCR:
		return u.lcr
	case MCR:
		return u.mcr
	case LSR:
		lsr := byte(LSRTHRE | LSRTEMT)
		if len(u.rx) > 0 {
			lsr |= LSRDataReady
		}
		return lsr
	case MSR:
		if u.mcr&MCRLoop != 0 {
			// Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
			var m byte
			if u.mcr&MCRDTR != 0 {
				m |= MSRDSR
			}
			if u.mcr&MCRRTS != 0 {
				m |= MSRCTS
			}
			if u.mcr&MCROut1 != 0 {
				m |= MSRRI
			}
			if u.mcr&MCROut2 != 0 {
				m |= MSRDCD
			}
			return m
		}
		// A console that is always there: carrier and clear-to-send.
		return MSRDCD | MSRDSR | MSRCTS
	case SCR:
		return u.scr
	}
	return 0
}

// pending returns the IIR code of the highest-priority pending interrupt.
func (u *UART) pending() byte {
	if u.ier&IERRecv != 0 && len(u.rx) > 0 {
		return IIRRecv
	}
	if u.ier&IERTHRE != 0 && u.threPending {
		return IIRTHRE
	}
	return IIRNone
}

// Write implements bus.Device.
func (u *UART) Write(off uint64, data []byte) {
	if len(data) != 1 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	v := data[0]
	switch off {
	case THR:
		if u.lcr&LCRDLAB != 0 {
			u.dll = v
			return
		}
		if u.mcr&MCRLoop != 0 {
			if len(u.rx) < FIFOSize {
				u.rx = append(u.rx, v)
			}
			u.interrupt()
			return
		}
		u.out.Write([]byte{v})
		// The byte left at once: THR is empty again.
		u.threPending = true
		u.interrupt()
	case IER:
		if u.lcr&LCRDLAB != 0 {
			u.dlm = v
			return
		}
		was := u.ier
		u.ier = v & ierMask
		if u.ier&IERRecv != 0 && was&IERRecv == 0 {
			u.enableRx()
		}
		if u.ier&IERTHRE != 0 && was&IERTHRE == 0 {
			// Enabling the THR-empty interrupt while THR is empty raises
			// it at once; Linux tests for this at start-up.
			u.threPending = true
		}
		u.interrupt()
	case FCR:
		if v&0x02 != 0 { // clear receive FIFO
			u.rx = nil
		}
	case LCR:
		u.lcr = v
	case MCR:
		u.mcr = v
	case SCR:
		u.scr = v
	}
}

// interrupt raises the line if an enabled cause is pending. On a PC the
// UART's interrupt reaches the interrupt controller only with OUT2 set.
func (u *UART) interrupt() {
	if u.pending() != IIRNone && u.mcr&MCROut2 != 0 {
		_ = u.irq.Trigger()
	}
}

// enableRx notes that the guest now listens: input may flow.
func (u *UART) enableRx() {
	u.signalSpace()
	select {
	case <-u.rxEnabled:
	default:
		close(u.rxEnabled)
	}
}

func (u *UART) signalSpace() {
	select {
	case u.space <- struct{}{}:
	default:
	}
}

// Enqueue offers received bytes to the guest. It takes as many as fit in
// the FIFO and returns how many; the rest must be offered again after Space.
// Until the guest driver enables the receive interrupt it takes none: a
// driver clears the FIFO when it starts, and what was there would be lost.
func (u *UART) Enqueue(b []byte) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ier&IERRecv == 0 && u.mcr&MCRLoop == 0 {
		return 0
	}
	n := min(len(b), FIFOSize-len(u.rx))
	if n <= 0 {
		return 0
	}
	u.rx = append(u.rx, b[:n]...)
	u.interrupt()
	return n
}

// RxEnabled is closed when a guest driver first enables the receive
// interrupt: the earliest moment input can be delivered.
func (u *UART) RxEnabled() <-chan struct{} { return u.rxEnabled }

// Space is signalled when the guest has emptied the receive FIFO, or has
// just enabled the receive interrupt.
func (u *UART) Space() <-chan struct{} { return u.space }
