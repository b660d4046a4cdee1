package trace

import (
	"time"

	"github.com/kiln-vmm/kiln/vmm/bus"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// Exit is one VM exit as the run loop saw it: which vCPU, why, when, how
// long it took, and what the guest was doing.
type Exit struct {
	VCPU   int
	Reason kvm.ExitReason

	// At is when KVM_RUN returned, counted from kiln's start.
	At time.Duration
	// Guest is how long KVM_RUN ran before this exit: guest code, and the
	// exits KVM handled in the kernel without coming out.
	Guest time.Duration
	// Handling is how long kiln took to handle the exit.
	Handling time.Duration

	// Access is the port or MMIO access of an IO or MMIO exit.
	Access *Access
	// CPU is where the guest was, for a traced exit that stops it: a halt,
	// a shutdown, an error.
	CPU *CPUState
	// Detail is what KVM reports besides the reason: the suberror of an
	// internal error, the type of a system event.
	Detail string
}

// Space is an address space a device can sit in.
type Space uint8

// The two address spaces of an x86 guest.
const (
	PIO  Space = iota // I/O ports: the in and out instructions
	MMIO              // memory-mapped I/O: physical addresses that are not RAM
)

func (s Space) String() string {
	if s == MMIO {
		return "mmio"
	}
	return "pio"
}

// Access is the device access of an IO or MMIO exit.
type Access struct {
	Space Space
	Addr  uint64 // the port, or the guest-physical address
	Write bool   // out or store; false for in or load
	Size  int    // bytes per access: 1, 2, 4 (or 8 for MMIO)
	Count int    // accesses in this exit: more than 1 for rep ins/outs
	// Data is Count*Size bytes: what the guest wrote, or what the device
	// returned. It aliases the kvm_run page, valid until the next KVM_RUN.
	Data []byte
	// Device is where the bus routed the access; Device.Device is nil if
	// no device holds the address.
	Device bus.Range
}

// CPUState is a vCPU's registers at an exit.
type CPUState struct {
	Regs  kvm.Regs
	Sregs kvm.Sregs
}

// ClassOf says which kind of exit, as --trace names them, a reason is.
func ClassOf(r kvm.ExitReason) config.ExitClass {
	switch r {
	case kvm.ExitIO:
		return config.ExitsIO
	case kvm.ExitMMIO:
		return config.ExitsMMIO
	case kvm.ExitHLT:
		return config.ExitsHLT
	case kvm.ExitShutdown, kvm.ExitSystemEvent:
		return config.ExitsShutdown
	case kvm.ExitInternalError, kvm.ExitFailEntry:
		return config.ExitsError
	}
	return config.ExitsOther
}
