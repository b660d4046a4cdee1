package kvm

import (
	"encoding/binary"
)

// Offsets inside struct kvm_run (include/uapi/linux/kvm.h).
const (
	runImmediateExit = 1
	runExitReason    = 8
	runUnion         = 32 // the per-exit-reason union
)

var le = binary.LittleEndian

// ExitReason returns why the last KVM_RUN returned.
func (v *VCPU) ExitReason() ExitReason {
	return ExitReason(le.Uint32(v.run[runExitReason:]))
}

// IO decodes kvm_run.io. Data aliases the kvm_run page: for an IN the
// handler fills it, and KVM copies it to the guest on the next KVM_RUN.
func (v *VCPU) IO() IOExit {
	u := v.run[runUnion:]
	size := int(u[1])
	count := int(le.Uint32(u[4:]))
	off := le.Uint64(u[8:])
	n := size * count
	if off > uint64(len(v.run)) || uint64(n) > uint64(len(v.run))-off {
		// A broken kernel answer; never index past the mapping.
		return IOExit{Port: le.Uint16(u[2:]), Write: u[0] == 1, Size: size}
	}
	return IOExit{
		Write: u[0] == 1,
		Size:  size,
		Port:  le.Uint16(u[2:]),
		Count: count,
		Data:  v.run[off : off+uint64(n)],
	}
}

// MMIO decodes kvm_run.mmio. Data aliases the kvm_run page.
func (v *VCPU) MMIO() MMIOExit {
	u := v.run[runUnion:]
	n := le.Uint32(u[16:])
	if n > 8 {
		n = 8
	}
	return MMIOExit{Addr: le.Uint64(u[0:]), Data: u[8 : 8+n], Write: u[20] == 1}
}

// Internal decodes kvm_run.internal.
func (v *VCPU) Internal() InternalExit {
	u := v.run[runUnion:]
	n := le.Uint32(u[4:])
	if n > 16 {
		n = 16
	}
	e := InternalExit{Suberror: InternalSuberror(le.Uint32(u[0:]))}
	for i := uint32(0); i < n; i++ {
		e.Data = append(e.Data, le.Uint64(u[8+8*i:]))
	}
	return e
}

// SystemEventType decodes kvm_run.system_event.type.
func (v *VCPU) SystemEventType() SystemEvent {
	return SystemEvent(le.Uint32(v.run[runUnion:]))
}

// FailEntryReason decodes kvm_run.fail_entry.hardware_entry_failure_reason.
func (v *VCPU) FailEntryReason() uint64 {
	return le.Uint64(v.run[runUnion:])
}

// SetImmediateExit sets kvm_run.immediate_exit: while it is set, KVM_RUN
// returns EINTR at once instead of entering the guest. Together with a
// signal to the vCPU's thread it stops a vCPU from another goroutine. Only
// the kernel reads the byte, so a plain store is enough.
func (v *VCPU) SetImmediateExit(on bool) {
	var b uint8
	if on {
		b = 1
	}
	v.run[runImmediateExit] = b
}
