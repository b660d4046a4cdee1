package trace

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// Tally is a number of exits and the time kiln spent handling them.
type Tally struct {
	Exits uint64
	Time  time.Duration
}

func (t *Tally) add(d time.Duration) {
	t.Exits++
	t.Time += d
}

// where is the place an access went: a device's range on a bus, or, for
// an access no device holds, the address alone (name ""), or, past
// maxUnmappedRows of those, "other addresses" of the space.
type where struct {
	space      Space
	name       string
	base, size uint64
	others     bool
}

// maxUnmappedRows bounds the accesses to distinct addresses no device
// holds that the statistics count apart: a guest that probes every port or
// MMIO address would otherwise add a row, and kiln memory, with each.
// Past it they are counted together, in one row per address space.
const maxUnmappedRows = 256

func (w where) String() string {
	if w.others {
		return fmt.Sprintf("%v, other addresses", w.space)
	}
	if w.size <= 1 {
		return fmt.Sprintf("%v %#x", w.space, w.base)
	}
	return fmt.Sprintf("%v %#x-%#x", w.space, w.base, w.base+w.size-1)
}

// vcpuTally is one vCPU's exits, and its time inside KVM_RUN.
type vcpuTally struct {
	Tally
	guest time.Duration
}

// Stats counts exits as they happen, from any number of vCPU threads.
type Stats struct {
	mu      sync.Mutex
	reasons map[kvm.ExitReason]*Tally
	devices map[where]*Tally
	vcpus   map[int]*vcpuTally

	unmapped int // rows of devices for addresses no device holds
}

// NewStats returns empty statistics.
func NewStats() *Stats {
	return &Stats{
		reasons: make(map[kvm.ExitReason]*Tally),
		devices: make(map[where]*Tally),
		vcpus:   make(map[int]*vcpuTally),
	}
}

// Add counts one exit.
func (s *Stats) Add(e Exit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tally(s.reasons, e.Reason).add(e.Handling)
	if a := e.Access; a != nil {
		w := where{space: a.Space, base: a.Addr, size: uint64(a.Size)}
		if a.Device.Device != nil {
			w = where{space: a.Space, name: a.Device.Name, base: a.Device.Base, size: a.Device.Size}
		} else if _, seen := s.devices[w]; !seen {
			if s.unmapped >= maxUnmappedRows {
				w = where{space: a.Space, others: true}
			} else {
				s.unmapped++
			}
		}
		tally(s.devices, w).add(e.Handling)
	}
	v := s.vcpus[e.VCPU]
	if v == nil {
		v = new(vcpuTally)
		s.vcpus[e.VCPU] = v
	}
	v.add(e.Handling)
	v.guest += e.Guest
}

// tally returns m's entry for k, creating it.
func tally[K comparable](m map[K]*Tally, k K) *Tally {
	t := m[k]
	if t == nil {
		t = new(Tally)
		m[k] = t
	}
	return t
}

// Boot is when each phase of a boot began: kiln builds the VM until the
// first KVM_RUN, the guest kernel boots until its init reports user space
// through the signal device, init takes its job until it starts the
// command, and the command runs until the VM ends.
type Boot struct {
	Start     time.Time // kiln started
	FirstRun  time.Time // vCPU 0 first entered KVM_RUN
	Userspace time.Time // the guest reported user space; zero if it never did
	Running   time.Time // init started its job's command; zero if it never did
	End       time.Time // the VM ended
}

// Report is the statistics of one run, ready to print.
type Report struct {
	Reasons []ReasonRow // most exits first
	Devices []DeviceRow // most exits first
	VCPUs   []VCPURow   // by vCPU number
	Boot    Boot
	// Failures are the devices that asked the guest for a reset, in order.
	Failures []Failure
}

// Failure is a device putting itself in DEVICE_NEEDS_RESET: which one
// (its type, and its register window, as the device rows name it), when,
// since kiln started, and why.
type Failure struct {
	Device string        `json:"device"`
	Where  string        `json:"where,omitempty"`
	At     time.Duration `json:"at_ns"`
	Reason string        `json:"reason"`
}

// ReasonRow is the exits with one exit reason.
type ReasonRow struct {
	Reason kvm.ExitReason
	Tally
}

// DeviceRow is the accesses to one device, or to one address no device
// holds (Device "").
type DeviceRow struct {
	Device string
	Where  string // the address space and range: "pio 0x3f8-0x3ff"
	Tally
}

// VCPURow is one vCPU's exits and the time it spent in KVM_RUN: running
// guest code, or in exits that KVM handled in the kernel.
type VCPURow struct {
	VCPU int
	Tally
	Guest time.Duration
}

// Report gathers the counts so far, with the boot phases b.
func (s *Stats) Report(b Boot) Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Report{Boot: b}
	for reason, t := range s.reasons {
		r.Reasons = append(r.Reasons, ReasonRow{Reason: reason, Tally: *t})
	}
	slices.SortFunc(r.Reasons, func(a, b ReasonRow) int {
		return cmp.Or(cmp.Compare(b.Exits, a.Exits), cmp.Compare(a.Reason, b.Reason))
	})
	for w, t := range s.devices {
		r.Devices = append(r.Devices, DeviceRow{Device: w.name, Where: w.String(), Tally: *t})
	}
	slices.SortFunc(r.Devices, func(a, b DeviceRow) int {
		return cmp.Or(cmp.Compare(b.Exits, a.Exits), cmp.Compare(a.Where, b.Where))
	})
	for id, v := range s.vcpus {
		r.VCPUs = append(r.VCPUs, VCPURow{VCPU: id, Tally: v.Tally, Guest: v.guest})
	}
	slices.SortFunc(r.VCPUs, func(a, b VCPURow) int { return cmp.Compare(a.VCPU, b.VCPU) })
	return r
}
