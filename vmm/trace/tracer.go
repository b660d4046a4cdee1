package trace

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// Tracer prints the VM exits of the classes it was asked for, one line
// each, from any number of vCPU threads. Lines are buffered, as a boot
// makes thousands of them; Flush writes out the rest when the VM ends.
type Tracer struct {
	classes config.ExitClass

	mu sync.Mutex
	w  *bufio.Writer
}

// NewTracer returns a tracer that writes to w the exits in classes.
func NewTracer(w io.Writer, classes config.ExitClass) *Tracer {
	return &Tracer{classes: classes, w: bufio.NewWriterSize(w, 64<<10)}
}

// Wants reports whether exits with reason r are to be traced. A nil
// Tracer wants none.
func (t *Tracer) Wants(r kvm.ExitReason) bool {
	return t != nil && t.classes&ClassOf(r) != 0
}

// Log writes e as one line.
func (t *Tracer) Log(e Exit) {
	l := line(e)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w.WriteString(l)
	t.w.WriteByte('\n')
}

// Note writes a line about something other than an exit that happened at
// at (since kiln started): a device asking for a reset.
func (t *Tracer) Note(at time.Duration, text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "[%12.6f] %s\n", at.Seconds(), text)
}

// Flush writes out the buffered lines.
func (t *Tracer) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.w.Flush(); err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	return nil
}

// line formats an exit as a trace line: the time since kiln started, in
// the kernel log's style, the vCPU and the exit reason, then what the
// exit was about. For an access:
//
//	[    0.912345] vcpu0 KVM_EXIT_IO    out   port 0x3f8     size 1 0x68 serial: THR <- 'h'
//
// For an exit that stops the guest, KVM's detail and the registers:
//
//	[   31.000000] vcpu0 KVM_EXIT_SHUTDOWN  rip 0xffffffff81000000 rsp ...
func line(e Exit) string {
	head := fmt.Sprintf("[%12.6f] vcpu%d %-14v", e.At.Seconds(), e.VCPU, e.Reason)
	if a := e.Access; a != nil {
		return head + " " + access(a)
	}
	s := head
	if e.Detail != "" {
		s += " " + e.Detail
	}
	if e.CPU != nil {
		s += " " + e.CPU.String()
	}
	return s
}

// access prints one port or MMIO access: direction, address, size, the
// values moved, and the device's words for it.
func access(a *Access) string {
	dir, where := "in", fmt.Sprintf("port %#x", a.Addr)
	if a.Write {
		dir = "out"
	}
	if a.Space == MMIO {
		dir, where = "read", fmt.Sprintf("addr %#x", a.Addr)
		if a.Write {
			dir = "write"
		}
	}
	size := fmt.Sprintf("size %d", a.Size)
	if a.Count > 1 {
		size += fmt.Sprintf(" x%d", a.Count)
	}
	return fmt.Sprintf("%-5s %-13s %s %s %s", dir, where, size, values(a), device(a))
}
