package bench

import "time"

// Results is everything one `kiln bench` run measured: the host, the
// settings, every sample of every method, the density runs and the goals.
// It is what --json writes and what the table and the chart are drawn from.
type Results struct {
	Host     Host      `json:"host"`
	Settings Settings  `json:"settings"`
	Started  time.Time `json:"started"`
	Methods  []Method  `json:"methods"`
	Density  []Density `json:"density,omitempty"`
	Goals    []Goal    `json:"goals,omitempty"`
	// Snapshot is the one the kiln-restore rows and the restore
	// density runs restore, if they ran.
	Snapshot *SnapshotInfo `json:"snapshot,omitempty"`
}

// Host describes the machine the numbers come from. KVM says whether
// /dev/kvm is hardware virtualization or a software nested KVM (kvm-pvm):
// absolute VM boot times only mean something on hardware.
type Host struct {
	KVM    string `json:"kvm"`
	PVM    bool   `json:"pvm"`
	CPU    string `json:"cpu"`
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	MemMiB uint64 `json:"mem_mib"`
}

// Settings are the benchmark's inputs.
type Settings struct {
	Rounds   int      `json:"rounds"`
	Warmup   int      `json:"warmup"`
	Command  []string `json:"command"`
	Kernel   string   `json:"kernel"`
	Initrd   string   `json:"initrd"`
	MemoryMB uint64   `json:"memory_mib"`
	Cmdline  string   `json:"cmdline"`
	// Workload is "http" for the REST-API benchmark; "" is the default,
	// the command started to its exit.
	Workload string     `json:"workload,omitempty"`
	Burst    *BurstSpec `json:"burst,omitempty"`
}

// Method is one way of starting the workload (a row of the table) with
// all its samples. Unavailable, when set, says why it did not run.
type Method struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"` // "vm", "container" or "process"
	Detail      string   `json:"detail,omitempty"`
	Unavailable string   `json:"unavailable,omitempty"`
	Samples     []Sample `json:"samples"`
}

// Sample is one start of the workload.
type Sample struct {
	Round  int  `json:"round"`
	Warmup bool `json:"warmup"`
	// Userspace is launch to guest user space (VMs only; 0 otherwise).
	Userspace time.Duration `json:"userspace_ns,omitempty"`
	// Exit is launch to the process's exit.
	Exit time.Duration `json:"exit_ns"`
	// Memory is what the process used; nil where not measured.
	Memory *Memory `json:"memory,omitempty"`
	// Phases split a kiln boot (kiln only): VMM setup, kernel, user space.
	Phases *Phases `json:"phases,omitempty"`
	// Steps split an engine's launch → exit with kiln as its runtime
	// (podman+kiln, ctr+kiln) into the phases of kiln's marks
	// (cmd/kiln/oci/phases.go): the engine, kiln create, the restore,
	// the guest's job, its mounts, the exec, the workload, the teardown.
	Steps []Step `json:"steps,omitempty"`
	// launched is when the sample's command started (Steps' launch).
	launched time.Time
	// Err says why the sample failed; failed samples are not summarized.
	Err string `json:"error,omitempty"`

	// The HTTP workload (Settings.Workload "http"): launch to ready as
	// the method itself reports it (podman run -d returning, kiln's
	// user-space report), launch to the first HTTP 200 the host got,
	// the burst, and the time to stop the instance and check nothing of
	// it is left (TeardownErr says what was).
	Ready       time.Duration `json:"ready_ns,omitempty"`
	FirstHTTP   time.Duration `json:"first_http_ns,omitempty"`
	Burst       *BurstResult  `json:"burst,omitempty"`
	Teardown    time.Duration `json:"teardown_ns,omitempty"`
	TeardownErr string        `json:"teardown_error,omitempty"`
}

// OK reports whether the sample counts.
func (s Sample) OK() bool { return s.Err == "" }

// Memory is a process's memory, in KiB. For a VMM, Guest is the resident
// part of the guest RAM mapping (the guest memory the guest touched) and
// Overhead is RSS minus Guest: what the VMM itself costs. PeakRSS is the
// largest resident size of the process or any child it waited for
// (getrusage's ru_maxrss), the measure used for container runtimes.
type Memory struct {
	RSS      uint64 `json:"rss_kib,omitempty"`
	PSS      uint64 `json:"pss_kib,omitempty"`
	Guest    uint64 `json:"guest_kib,omitempty"`
	Overhead uint64 `json:"overhead_kib,omitempty"`
	PeakRSS  uint64 `json:"peak_rss_kib,omitempty"`
	// Processes is how many processes RSS and PSS sum over (the HTTP
	// workload: an instance's monitor, runtime and service, or its VMM).
	Processes int `json:"processes,omitempty"`
}

// Step is one named part of a sample's launch → exit.
type Step struct {
	Name string        `json:"name"`
	Took time.Duration `json:"took_ns"`
}

// Phases is where a kiln boot's time went, as kiln --stats reports it.
type Phases struct {
	VMMSetup  time.Duration `json:"vmm_setup_ns"`
	Kernel    time.Duration `json:"kernel_ns"`
	UserSpace time.Duration `json:"user_space_ns"`
}

// SnapshotInfo is the snapshot the kiln-restore rows restore: how long
// taking it took and the disk space it takes, in KiB.
type SnapshotInfo struct {
	Took   time.Duration `json:"took_ns"`
	Memory uint64        `json:"memory_kib"`
	State  uint64        `json:"state_kib"`
}

// Density is one run of K VMs started at once.
type Density struct {
	VMs int `json:"vms"`
	// Method is the HTTP workload's method whose instances these are;
	// AllServing is from the first launch until the last answered 200.
	Method     string        `json:"method,omitempty"`
	AllServing time.Duration `json:"all_serving_ns,omitempty"`
	// Restored: restored from one snapshot, not booted.
	Restored bool `json:"restored,omitempty"`
	// AllUserspace is from the first launch until the last VM reported user space.
	AllUserspace time.Duration `json:"all_userspace_ns"`
	// Each VM's own launch to user space.
	Each []time.Duration `json:"each_ns"`
	// Total memory of all the VMM processes when all had reached user
	// space, in KiB.
	TotalRSS      uint64 `json:"total_rss_kib"`
	TotalPSS      uint64 `json:"total_pss_kib"`
	TotalOverhead uint64 `json:"total_overhead_kib"`
	// PerSecond is the clone rate of a restored HTTP density run in which
	// every instance answered: instances restored and serving per second,
	// K over AllServing; PerCoreSecond is that per host core.
	PerSecond     float64 `json:"serving_per_second,omitempty"`
	PerCoreSecond float64 `json:"serving_per_core_second,omitempty"`
	Err           string  `json:"error,omitempty"`
}

// Goal is one of the targets kiln sets itself, checked against this run.
type Goal struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Met    bool   `json:"met"`
	Known  bool   `json:"known"` // false when the run lacks the numbers
	Note   string `json:"note,omitempty"`
}
