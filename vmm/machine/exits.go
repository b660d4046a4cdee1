package machine

import (
	"fmt"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// exitSource is what the exit dispatch needs of a vCPU: what KVM said
// about its last exit, and its registers for error messages. Every vcpu
// is one (vcpu.go); the dispatch tests use a fake that is nothing more.
type exitSource interface {
	IO() kvm.IOExit
	MMIO() kvm.MMIOExit
	Internal() kvm.InternalExit
	SystemEventType() kvm.SystemEvent
	FailEntryReason() uint64
	Regs() (kvm.Regs, error)
	Sregs() (kvm.Sregs, error)
}

// handleExit is the exit dispatch: it does what the exit reason asks and
// reports whether the vCPU must stop. An exit that ends the VM records
// why; one kiln cannot handle is an error.
func (m *Machine) handleExit(id int, v exitSource, reason kvm.ExitReason) (stop bool, err error) {
	switch reason {
	case kvm.ExitIO:
		io := v.IO()
		for i := 0; i < io.Count; i++ {
			d := io.Data[i*io.Size : (i+1)*io.Size]
			if io.Write {
				m.dev.pio.Write(uint64(io.Port), d)
			} else {
				m.dev.pio.Read(uint64(io.Port), d)
			}
		}
	case kvm.ExitMMIO:
		mm := v.MMIO()
		if mm.Write {
			m.dev.mmio.Write(mm.Addr, mm.Data)
		} else {
			m.dev.mmio.Read(mm.Addr, mm.Data)
		}
	case kvm.ExitIntr:
		// Interrupted by a signal; go back in.
	case kvm.ExitHLT:
		// With the in-kernel local APIC, HLT only exits when the vCPU
		// can never wake: interrupts off. The guest has stopped.
		m.stop.Do(m, Result{Reason: ReasonShutdown, Err: fmt.Errorf("vCPU %d halted with interrupts disabled%s", id, regsSuffix(v))})
		return true, nil
	case kvm.ExitShutdown:
		m.stop.Do(m, Result{Reason: ReasonShutdown, Err: fmt.Errorf("vCPU %d: triple fault%s", id, regsSuffix(v))})
		return true, nil
	case kvm.ExitSystemEvent:
		if ev := v.SystemEventType(); ev == kvm.SystemEventReset {
			m.stop.Do(m, Result{Reason: ReasonReset})
		} else {
			m.stop.Do(m, Result{Reason: ReasonShutdown, Err: fmt.Errorf("vCPU %d: system event %v", id, ev)})
		}
		return true, nil
	case kvm.ExitInternalError:
		ie := v.Internal()
		return true, fmt.Errorf("vCPU %d: %v: %v%s (data %#x)", id, reason, ie.Suberror, regsSuffix(v), ie.Data)
	case kvm.ExitFailEntry:
		return true, fmt.Errorf("vCPU %d: %v: hardware entry failure reason %#x%s", id, reason, v.FailEntryReason(), regsSuffix(v))
	default:
		return true, fmt.Errorf("vCPU %d: unexpected exit %v%s", id, reason, regsSuffix(v))
	}
	return false, nil
}

// regsSuffix describes where the guest was, for error messages.
func regsSuffix(v exitSource) string {
	r, err := v.Regs()
	if err != nil {
		return ""
	}
	s := fmt.Sprintf(" at RIP %#x (RSP %#x, RFLAGS %#x)", r.RIP, r.RSP, r.RFLAGS)
	if sr, err := v.Sregs(); err == nil {
		s += fmt.Sprintf(" CR0 %#x CR3 %#x CR4 %#x EFER %#x", sr.CR0, sr.CR3, sr.CR4, sr.EFER)
	}
	return s
}
