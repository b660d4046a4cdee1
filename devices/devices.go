// Package devices holds what the emulated devices share. Each device lives
// in its own package below this one, as a small state machine that knows
// nothing of KVM: it sees register reads and writes at offsets inside its
// own window, and raises interrupts through the Interrupt interface. That
// keeps every device testable with a byte buffer and a counter.
package devices

import (
	"strings"
	"sync/atomic"
)

// Interrupt is a device's interrupt line.
type Interrupt interface {
	// Trigger raises the interrupt (an edge: the line pulses).
	Trigger() error
}

// CountingInterrupt is an Interrupt that counts triggers; tests use it. A
// device raises its interrupt from whichever goroutine has work done (a
// vCPU's, a queue worker's), so the count is atomic.
type CountingInterrupt struct{ n atomic.Int64 }

// Trigger counts one interrupt.
func (c *CountingInterrupt) Trigger() error { c.n.Add(1); return nil }

// Count returns how many interrupts were raised.
func (c *CountingInterrupt) Count() int { return int(c.n.Load()) }

// ByteAccess prepares a read of an 8-bit device's register: it fills data
// with what an unanswered read returns (fill: 0xff for floating lines, 0
// for a register that reads as zero) and reports whether the access is
// one byte wide, the only width such a device answers.
func ByteAccess(data []byte, fill byte) bool {
	for i := range data {
		data[i] = fill
	}
	return len(data) == 1
}

// Bit names one bit, or a mask of bits, of a register.
type Bit struct {
	Mask uint64
	Name string
}

// BitNames names the bits of v that are set, in the order bits lists
// them, joined by sep; none when no listed bit is set. Traces use it to
// say what a register value means ("ACKNOWLEDGE DRIVER DRIVER_OK").
func BitNames(v uint64, bits []Bit, sep, none string) string {
	var set []string
	for _, b := range bits {
		if v&b.Mask != 0 {
			set = append(set, b.Name)
		}
	}
	if len(set) == 0 {
		return none
	}
	return strings.Join(set, sep)
}
