package trace

import "time"

// Event is one line of kiln run --report: a JSON object for each moment of
// the VM's life as it happens, so that a program watching the file (kiln
// bench) learns of user space while the guest runs, and a last one, "end",
// with how the VM ended and where its time went.
type Event struct {
	// Event is "userspace" (the guest's init reported user space),
	// "running" (init started its command) or "end".
	Event string `json:"event"`
	// AtNS is when, in nanoseconds since kiln started.
	AtNS int64 `json:"at_ns"`

	// With "end": why the VM ended ("reset", "shutdown (triple fault)",
	// "error", "stopped"), kiln's error if any, the guest command's exit
	// status if init reported one, and kiln's exit code.
	Reason     string `json:"reason,omitempty"`
	Error      string `json:"error,omitempty"`
	ExitStatus *int   `json:"exit_status,omitempty"`
	Code       *int   `json:"code,omitempty"`
	// Phases are the durations of the boot's phases (Boot), those that
	// happened.
	Phases *PhaseTimes `json:"phases,omitempty"`
	// Exits are the exit counts, with --stats.
	Exits *ExitCounts `json:"exits,omitempty"`
	// Failures are the devices that asked the guest for a reset.
	Failures []Failure `json:"failures,omitempty"`
}

// PhaseTimes are the phases of Boot in nanoseconds; zero for a phase that
// did not happen.
type PhaseTimes struct {
	VMMSetupNS int64 `json:"vmm_setup_ns"` // kiln start to the first KVM_RUN
	KernelNS   int64 `json:"kernel_ns"`    // first KVM_RUN to guest user space
	InitNS     int64 `json:"init_ns"`      // user space to the command's start
	CommandNS  int64 `json:"command_ns"`   // the command's start to the end
	TotalNS    int64 `json:"total_ns"`     // kiln start to the end
}

// Phases returns b's phases as PhaseTimes.
func (b Boot) Phases() PhaseTimes {
	d := func(from, to time.Time) int64 {
		if from.IsZero() || to.IsZero() {
			return 0
		}
		return int64(to.Sub(from))
	}
	return PhaseTimes{
		VMMSetupNS: d(b.Start, b.FirstRun),
		KernelNS:   d(b.FirstRun, b.Userspace),
		InitNS:     d(b.Userspace, b.Running),
		CommandNS:  d(b.Running, b.End),
		TotalNS:    d(b.Start, b.End),
	}
}

// ExitCounts are the exits of a run, by reason and by device.
type ExitCounts struct {
	Total    uint64         `json:"total"`
	ByReason map[string]int `json:"by_reason"`
	ByDevice map[string]int `json:"by_device"` // "" for accesses no device holds
}

// Counts returns r's exit counts.
func (r Report) Counts() *ExitCounts {
	c := &ExitCounts{ByReason: map[string]int{}, ByDevice: map[string]int{}}
	for _, row := range r.Reasons {
		c.ByReason[row.Reason.String()] += int(row.Exits)
		c.Total += row.Exits
	}
	for _, row := range r.Devices {
		c.ByDevice[row.Device] += int(row.Exits)
	}
	return c
}
