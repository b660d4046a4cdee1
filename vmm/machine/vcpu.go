package machine

import (
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// vcpu is what the run loop needs of a virtual CPU (run.go): enter the
// guest, say why it came back, be stopped from another thread, and save
// itself when the VM pauses. A KVM vCPU is one (kvmVCPU); the tests drive
// the loop with a scripted fake (run_test.go), as Firecracker's vcpu.rs
// tests do (test_vcpu_kick, test_handle_kvm_exit).
type vcpu interface {
	exitSource // what KVM said about the last exit (exits.go)

	// ID is the vCPU's index in the VM.
	ID() int
	// Run enters the guest until the next exit the VMM must handle
	// (KVM_RUN). It returns kvm.ErrInterrupted when a signal or
	// SetImmediateExit stopped it before or during guest execution.
	Run() error
	// ExitReason says why the last Run returned.
	ExitReason() kvm.ExitReason
	// SetImmediateExit, from any thread, makes the next Run return at
	// once (kvm_run.immediate_exit): with a signal to the vCPU's thread,
	// how another goroutine stops a vCPU.
	SetImmediateExit(on bool)
	// FinishPending completes an exit the VMM has handled (an IN's data
	// goes into the guest's register) without running guest code, so
	// that the vCPU's state is whole.
	FinishPending() error
	// SaveState reads the stopped vCPU's state for a snapshot
	// (cpu.SaveState), on its own thread.
	SaveState(cpuid []kvm.CPUIDEntry, msrs []uint32) (*cpu.State, error)
}

// kvmVCPU is a KVM vCPU as the run loop drives it: *kvm.VCPU, which
// vmm/cpu saves.
type kvmVCPU struct{ *kvm.VCPU }

// SaveState implements vcpu.
func (v kvmVCPU) SaveState(cpuid []kvm.CPUIDEntry, msrs []uint32) (*cpu.State, error) {
	return cpu.SaveState(v.VCPU, cpuid, msrs)
}
