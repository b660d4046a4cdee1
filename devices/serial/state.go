package serial

import "fmt"

// State is the UART as a snapshot holds it: every register, whether a
// transmitter-empty interrupt is waiting, and the bytes received that the
// guest has not read yet.
type State struct {
	IER, LCR, MCR, SCR byte
	DLL, DLM           byte
	THREPending        bool   `json:"thre_pending"`
	RX                 []byte `json:"rx"`
}

// Save returns the UART's state.
func (u *UART) Save() State {
	u.mu.Lock()
	defer u.mu.Unlock()
	return State{IER: u.ier, LCR: u.lcr, MCR: u.mcr, SCR: u.scr, DLL: u.dll, DLM: u.dlm,
		THREPending: u.threPending, RX: append([]byte(nil), u.rx...)}
}

// Restore sets the UART to s. A guest driver that had enabled the receive
// interrupt had done so before the snapshot: input may flow at once.
func (u *UART) Restore(s State) error {
	if len(s.RX) > FIFOSize {
		return fmt.Errorf("serial: %d bytes in a %d-byte FIFO", len(s.RX), FIFOSize)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ier, u.lcr, u.mcr, u.scr, u.dll, u.dlm = s.IER, s.LCR, s.MCR, s.SCR, s.DLL, s.DLM
	u.threPending = s.THREPending
	u.rx = append([]byte(nil), s.RX...)
	if u.ier&IERRecv != 0 {
		u.enableRx()
	}
	return nil
}
