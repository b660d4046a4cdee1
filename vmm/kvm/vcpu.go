package kvm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// VCPU is one virtual CPU. Its ioctls must be issued from one OS thread:
// the goroutine that runs it calls runtime.LockOSThread first.
type VCPU struct {
	id  int
	fd  int
	run []byte // the shared struct kvm_run, mmapped from fd
}

// ID is the vCPU's index in its VM (KVM_CREATE_VCPU's argument), which is
// also its APIC ID.
func (v *VCPU) ID() int { return v.id }

// FD is the vCPU's descriptor, for a seccomp filter that allows its
// ioctls on it alone (vmm/seccomp). Nothing else should use it.
func (v *VCPU) FD() int { return v.fd }

// Close unmaps the run area and closes the vCPU.
func (v *VCPU) Close() error {
	unix.Munmap(v.run)
	return unix.Close(v.fd)
}

// Run enters the guest until the next exit that user space must handle
// (KVM_RUN). It returns ErrInterrupted when a signal or Kick stopped it
// before or during guest execution; the caller decides whether to loop.
func (v *VCPU) Run() error {
	_, err := ioctl(v.fd, kvmRun, 0)
	if err != nil && (errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN)) {
		return ErrInterrupted
	}
	return err
}

// ErrInterrupted is returned by Run when KVM_RUN was interrupted.
var ErrInterrupted = errors.New("KVM_RUN interrupted")

// Regs reads the general-purpose registers (KVM_GET_REGS).
func (v *VCPU) Regs() (Regs, error) {
	var r Regs
	_, err := ioctlPtr(v.fd, kvmGetRegs, &r)
	return r, err
}

// SetRegs writes the general-purpose registers (KVM_SET_REGS).
func (v *VCPU) SetRegs(r Regs) error {
	_, err := ioctlPtr(v.fd, kvmSetRegs, &r)
	return err
}

// Sregs reads the special registers (KVM_GET_SREGS).
func (v *VCPU) Sregs() (Sregs, error) {
	var s Sregs
	_, err := ioctlPtr(v.fd, kvmGetSregs, &s)
	return s, err
}

// SetSregs writes the special registers (KVM_SET_SREGS).
func (v *VCPU) SetSregs(s Sregs) error {
	_, err := ioctlPtr(v.fd, kvmSetSregs, &s)
	return err
}

// SetFPU writes the x87/SSE state (KVM_SET_FPU).
func (v *VCPU) SetFPU(f FPU) error {
	_, err := ioctlPtr(v.fd, kvmSetFPU, &f)
	return err
}

// SetCPUID sets what the CPUID instruction returns in this vCPU
// (KVM_SET_CPUID2).
func (v *VCPU) SetCPUID(entries []CPUIDEntry) error {
	if len(entries) > maxCPUIDEntries {
		return fmt.Errorf("KVM_SET_CPUID2: %d entries, at most %d", len(entries), maxCPUIDEntries)
	}
	c := new(cpuid2)
	c.NEnt = uint32(len(entries))
	copy(c.Entries[:], entries)
	_, err := ioctlPtr(v.fd, kvmSetCPUID2, c)
	return err
}

// SetMSRs writes model-specific registers (KVM_SET_MSRS), as many calls
// as it takes. KVM returns how many it set; fewer than asked is an error
// naming the first refused one.
func (v *VCPU) SetMSRs(entries []MSR) error {
	for len(entries) > 0 {
		n := min(len(entries), maxMSRs)
		m := new(msrs)
		m.NMSRs = uint32(n)
		copy(m.Entries[:], entries[:n])
		got, err := ioctlPtr(v.fd, kvmSetMSRs, m)
		if err != nil {
			return err
		}
		if int(got) != n {
			return fmt.Errorf("KVM_SET_MSRS: MSR %#x refused", entries[got].Index)
		}
		entries = entries[n:]
	}
	return nil
}

// LAPIC reads the local APIC registers (KVM_GET_LAPIC).
func (v *VCPU) LAPIC() (*LAPICState, error) {
	s := new(LAPICState)
	_, err := ioctlPtr(v.fd, kvmGetLAPIC, s)
	return s, err
}

// SetLAPIC writes the local APIC registers (KVM_SET_LAPIC).
func (v *VCPU) SetLAPIC(s *LAPICState) error {
	_, err := ioctlPtr(v.fd, kvmSetLAPIC, s)
	return err
}

// TSCKHz returns the vCPU's time-stamp counter frequency in kHz.
func (v *VCPU) TSCKHz() (uint32, error) {
	r, err := ioctl(v.fd, kvmGetTSCKHz, 0)
	return uint32(r), err
}
