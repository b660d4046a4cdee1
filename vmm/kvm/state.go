package kvm

import (
	"errors"
	"fmt"
)

// Reading and writing the state of a VM and its vCPUs, for snapshots. The
// state lives in the kernel: registers, the local APIC, the interrupt
// controllers, the timer, the clock. Each GET ioctl has its SET twin.

// MSRIndexList returns the model-specific registers KVM saves and
// restores for a vCPU (KVM_GET_MSR_INDEX_LIST): those the host supports
// and those KVM emulates, such as kvmclock's.
func (s *System) MSRIndexList() ([]uint32, error) {
	l := new(msrList)
	l.NMSRs = maxMSRIndices
	if _, err := ioctlPtr(s.fd, kvmGetMSRIndexList, l); err != nil {
		return nil, err
	}
	return append([]uint32(nil), l.Indices[:l.NMSRs]...), nil
}

// IRQChip reads one in-kernel interrupt controller (KVM_GET_IRQCHIP).
func (vm *VM) IRQChip(id uint32) (*IRQChip, error) {
	c := &IRQChip{ChipID: id}
	_, err := ioctlPtr(vm.fd, kvmGetIRQChip, c)
	return c, err
}

// SetIRQChip writes one in-kernel interrupt controller (KVM_SET_IRQCHIP).
func (vm *VM) SetIRQChip(c *IRQChip) error {
	_, err := ioctlPtr(vm.fd, kvmSetIRQChip, c)
	return err
}

// PIT2 reads the in-kernel 8254 timer (KVM_GET_PIT2).
func (vm *VM) PIT2() (*PITState2, error) {
	p := new(PITState2)
	_, err := ioctlPtr(vm.fd, kvmGetPIT2, p)
	return p, err
}

// SetPIT2 writes the in-kernel 8254 timer (KVM_SET_PIT2).
func (vm *VM) SetPIT2(p *PITState2) error {
	_, err := ioctlPtr(vm.fd, kvmSetPIT2, p)
	return err
}

// Clock reads the VM's kvmclock (KVM_GET_CLOCK).
func (vm *VM) Clock() (ClockData, error) {
	var c ClockData
	_, err := ioctlPtr(vm.fd, kvmGetClock, &c)
	return c, err
}

// SetClock sets the VM's kvmclock (KVM_SET_CLOCK). With Flags zero the
// guest's clock continues from c.Clock: no jump, no matter how long ago
// it was read.
func (vm *VM) SetClock(c ClockData) error {
	_, err := ioctlPtr(vm.fd, kvmSetClock, &c)
	return err
}

// MPState reads whether the vCPU runs, halts or waits (KVM_GET_MP_STATE).
func (v *VCPU) MPState() (MPState, error) {
	var s MPState
	_, err := ioctlPtr(v.fd, kvmGetMPState, &s)
	return s, err
}

// SetMPState writes it (KVM_SET_MP_STATE).
func (v *VCPU) SetMPState(s MPState) error {
	_, err := ioctlPtr(v.fd, kvmSetMPState, &s)
	return err
}

// VCPUEvents reads pending exceptions, interrupts and NMIs
// (KVM_GET_VCPU_EVENTS).
func (v *VCPU) VCPUEvents() (*VCPUEvents, error) {
	e := new(VCPUEvents)
	_, err := ioctlPtr(v.fd, kvmGetVCPUEvents, e)
	return e, err
}

// SetVCPUEvents writes them (KVM_SET_VCPU_EVENTS).
func (v *VCPU) SetVCPUEvents(e *VCPUEvents) error {
	_, err := ioctlPtr(v.fd, kvmSetVCPUEvents, e)
	return err
}

// DebugRegs reads DR0-DR7 (KVM_GET_DEBUGREGS).
func (v *VCPU) DebugRegs() (DebugRegs, error) {
	var d DebugRegs
	_, err := ioctlPtr(v.fd, kvmGetDebugRegs, &d)
	return d, err
}

// SetDebugRegs writes them (KVM_SET_DEBUGREGS).
func (v *VCPU) SetDebugRegs(d DebugRegs) error {
	_, err := ioctlPtr(v.fd, kvmSetDebugRegs, &d)
	return err
}

// XSave reads the FPU, SSE and AVX state (KVM_GET_XSAVE).
func (v *VCPU) XSave() (*XSave, error) {
	x := new(XSave)
	_, err := ioctlPtr(v.fd, kvmGetXSave, x)
	return x, err
}

// SetXSave writes it (KVM_SET_XSAVE).
func (v *VCPU) SetXSave(x *XSave) error {
	_, err := ioctlPtr(v.fd, kvmSetXSave, x)
	return err
}

// XCRs reads the extended control registers (KVM_GET_XCRS).
func (v *VCPU) XCRs() (XCRs, error) {
	var x XCRs
	_, err := ioctlPtr(v.fd, kvmGetXCRs, &x)
	return x, err
}

// SetXCRs writes them (KVM_SET_XCRS).
func (v *VCPU) SetXCRs(x XCRs) error {
	_, err := ioctlPtr(v.fd, kvmSetXCRs, &x)
	return err
}

// MSRs reads the given model-specific registers (KVM_GET_MSRS). KVM stops
// at the first register it cannot read; MSRs leaves such a register out
// and goes on with the rest, so the result holds every readable one.
func (v *VCPU) MSRs(indices []uint32) ([]MSR, error) {
	var out []MSR
	for len(indices) > 0 {
		m := new(msrs)
		n := min(len(indices), maxMSRs)
		m.NMSRs = uint32(n)
		for i := 0; i < n; i++ {
			m.Entries[i].Index = indices[i]
		}
		got, err := ioctlPtr(v.fd, kvmGetMSRs, m)
		if err != nil {
			return nil, err
		}
		out = append(out, m.Entries[:got]...)
		if int(got) < n {
			got++ // skip the one KVM refused
		}
		indices = indices[got:]
	}
	return out, nil
}

// SetTSCKHz sets the frequency of the vCPU's TSC (KVM_SET_TSC_KHZ): a
// guest restored on a host whose TSC runs at another rate keeps its own.
func (v *VCPU) SetTSCKHz(khz uint32) error {
	_, err := ioctl(v.fd, kvmSetTSCKHz, uintptr(khz))
	return err
}

// KVMClockCtrl tells the guest, through kvmclock, that the vCPU was
// stopped by the host (KVM_KVMCLOCK_CTRL), so that its watchdogs do not
// take the pause for a lockup. A guest without kvmclock refuses it
// (EINVAL).
func (v *VCPU) KVMClockCtrl() error {
	_, err := ioctl(v.fd, kvmKVMClockCtrl, 0)
	return err
}

// FinishPending completes an I/O or MMIO exit that user space has handled
// but the guest has not yet seen the result of: an IN's data goes into
// the guest's register on the next KVM_RUN. With immediate_exit set,
// KVM_RUN completes it and returns at once, without running guest code
// (Documentation/virt/kvm/api.rst, "KVM_RUN"). Only then is the vCPU's
// state, as the GET ioctls read it, consistent.
func (v *VCPU) FinishPending() error {
	v.SetImmediateExit(true)
	defer v.SetImmediateExit(false)
	err := v.Run()
	if err == nil || errors.Is(err, ErrInterrupted) {
		return nil
	}
	return fmt.Errorf("complete the pending exit: %w", err)
}
