package kvm

import "fmt"

// ExitReason is kvm_run.exit_reason: why KVM_RUN returned.
type ExitReason uint32

// The exit reasons, from include/uapi/linux/kvm.h (KVM_EXIT_*).
const (
	ExitUnknown       ExitReason = 0
	ExitException     ExitReason = 1
	ExitIO            ExitReason = 2
	ExitHypercall     ExitReason = 3
	ExitDebug         ExitReason = 4
	ExitHLT           ExitReason = 5
	ExitMMIO          ExitReason = 6
	ExitIRQWindowOpen ExitReason = 7
	ExitShutdown      ExitReason = 8
	ExitFailEntry     ExitReason = 9
	ExitIntr          ExitReason = 10
	ExitSetTPR        ExitReason = 11
	ExitTPRAccess     ExitReason = 12
	ExitNMI           ExitReason = 16
	ExitInternalError ExitReason = 17
	ExitSystemEvent   ExitReason = 24
	ExitIOAPICEOI     ExitReason = 26
	ExitX86RDMSR      ExitReason = 29
	ExitX86WRMSR      ExitReason = 30
	ExitX86BusLock    ExitReason = 33
	ExitNotify        ExitReason = 37
)

var exitNames = map[ExitReason]string{
	ExitUnknown: "UNKNOWN", ExitException: "EXCEPTION", ExitIO: "IO",
	ExitHypercall: "HYPERCALL", ExitDebug: "DEBUG", ExitHLT: "HLT",
	ExitMMIO: "MMIO", ExitIRQWindowOpen: "IRQ_WINDOW_OPEN",
	ExitShutdown: "SHUTDOWN", ExitFailEntry: "FAIL_ENTRY", ExitIntr: "INTR",
	ExitSetTPR: "SET_TPR", ExitTPRAccess: "TPR_ACCESS", ExitNMI: "NMI",
	ExitInternalError: "INTERNAL_ERROR", ExitSystemEvent: "SYSTEM_EVENT",
	ExitIOAPICEOI: "IOAPIC_EOI", ExitX86RDMSR: "X86_RDMSR",
	ExitX86WRMSR: "X86_WRMSR", ExitX86BusLock: "X86_BUS_LOCK",
	ExitNotify: "NOTIFY",
}

func (r ExitReason) String() string {
	if n, ok := exitNames[r]; ok {
		return "KVM_EXIT_" + n
	}
	return fmt.Sprintf("KVM_EXIT_%d", uint32(r))
}

// InternalSuberror is kvm_run.internal.suberror (KVM_INTERNAL_ERROR_*).
type InternalSuberror uint32

func (s InternalSuberror) String() string {
	switch s {
	case 1:
		return "emulation failure"
	case 2:
		return "simultaneous exceptions"
	case 3:
		return "delivery event"
	case 4:
		return "unexpected exit reason"
	}
	return fmt.Sprintf("suberror %d", uint32(s))
}

// SystemEvent is kvm_run.system_event.type: what a KVM_EXIT_SYSTEM_EVENT
// asks of the VMM (include/uapi/linux/kvm.h, KVM_SYSTEM_EVENT_*).
type SystemEvent uint32

// The system events. A kiln guest resets through the i8042 (devices/i8042)
// and rarely causes one; the run loop ends the VM on any of them, as a reset
// for SystemEventReset and as a crash otherwise (vmm/machine, exits.go).
const (
	SystemEventShutdown SystemEvent = 1 // KVM_SYSTEM_EVENT_SHUTDOWN: power off
	SystemEventReset    SystemEvent = 2 // KVM_SYSTEM_EVENT_RESET: reboot
	SystemEventCrash    SystemEvent = 3 // KVM_SYSTEM_EVENT_CRASH: the guest crashed
	SystemEventWakeup   SystemEvent = 4 // KVM_SYSTEM_EVENT_WAKEUP: a vCPU woke from suspend
	SystemEventSuspend  SystemEvent = 5 // KVM_SYSTEM_EVENT_SUSPEND: the guest asks to suspend
	SystemEventSEVTerm  SystemEvent = 6 // KVM_SYSTEM_EVENT_SEV_TERM: an SEV guest asks to end
)

var systemEventNames = map[SystemEvent]string{
	SystemEventShutdown: "shutdown", SystemEventReset: "reset", SystemEventCrash: "crash",
	SystemEventWakeup: "wakeup", SystemEventSuspend: "suspend", SystemEventSEVTerm: "SEV termination",
}

func (e SystemEvent) String() string {
	if n, ok := systemEventNames[e]; ok {
		return n
	}
	return fmt.Sprintf("event %d", uint32(e))
}

// IOExit describes a port I/O instruction (in, out, ins, outs).
type IOExit struct {
	Port  uint16
	Write bool   // out: the guest wrote Data
	Size  int    // bytes per access: 1, 2 or 4
	Data  []byte // Count*Size bytes inside the kvm_run page
	Count int    // >1 for rep ins/outs
}

// MMIOExit describes an access to guest-physical memory that is not RAM.
type MMIOExit struct {
	Addr  uint64
	Write bool
	Data  []byte // len bytes inside the kvm_run page
}

// InternalExit describes KVM_EXIT_INTERNAL_ERROR.
type InternalExit struct {
	Suberror InternalSuberror
	Data     []uint64
}
