package oci

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/config"
)

// linux.resources as the VM's size. runc writes a container's limits
// into its cgroup; a kiln container is a VM, whose memory and vCPUs are
// the limits a guest cannot exceed, so those two set the VM's shape
// (shape.go), and every other limit, which a VM cannot honour as a cgroup
// would, is noted, one line each, in the runtime's log (--log), never
// dropped silently. The rules, in the order SizeOf applies them:
//
//	memory.limit       the VM's memory, rounded up to a MiB, at least
//	                   MinMemory (what the guest's kernel and init need),
//	                   at most the host's memory; none (or -1): Memory
//	cpu.quota/period   ceil(quota/period) vCPUs (podman --cpus 1.5: 2);
//	                   a period of 0 is the kernel's default, 100 ms
//	cpu.cpus           as many vCPUs as CPUs in the set ("0-1,3": 3);
//	                   with a quota too, the smaller of the two
//	                   both capped at the host's CPUs and kiln's MaxCPUs;
//	                   neither: CPUs
//
// A VM of another size is another shape, with a warm snapshot of its
// own, taken the first time a container asks for it (warm.go).
//
// A container with a cgroupsPath has its VMM in that cgroup on the host
// (cgroup.go), where every limit is written, and each is then honoured
// there, for the VM as a whole: the notes for the limits a VM cannot
// honour by its size are not made. The memory limit then bounds the
// guest's RAM and the VMM's own memory together, so the guest gets the
// limit less VMMReserve: a guest that fills its RAM (with page cache, as
// a long-lived Linux does) leaves its VMM room under the limit, instead of
// the host's OOM killer ending the VM.

// Size is a container VM's vCPUs and memory.
type Size struct {
	CPUs   int    `json:"cpus"`
	Memory uint64 `json:"memory"` // bytes
}

// DefaultSize is the VM of a container that sets no limit.
var DefaultSize = Size{CPUs: CPUs, Memory: Memory}

// MinMemory is the least memory a container's VM is given, whatever its
// limit: the guest's kernel, its init and the container's setup need it.
const MinMemory = 64 << 20

// VMMReserve is what a VMM in the container's host cgroup keeps of the
// memory limit for itself: its heap, its threads' stacks, the 9P
// server's buffers (3-4 MiB measured, docs/benchmarks.md), with room.
const VMMReserve = 16 << 20

// defaultPeriod is the kernel's CFS period when none is given.
const defaultPeriod = 100000

// Host is what a VM's size is capped by.
type Host struct {
	CPUs   int
	Memory uint64 // bytes; 0: unknown
}

// ThisHost is the machine kiln runs on.
func ThisHost() Host {
	h := Host{CPUs: runtime.NumCPU()}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		h.Memory = uint64(si.Totalram) * uint64(si.Unit)
	}
	return h
}

// SizeOf is the size of the VM for res on host h, and the notes to log:
// how the limits became the size, and the limits a VM cannot honour.
// inCgroup says the VMM will be in the container's host cgroup, with the
// limits written there.
func SizeOf(res *specs.LinuxResources, h Host, inCgroup bool) (Size, []string, error) {
	size := DefaultSize
	if res == nil {
		return size, nil, nil
	}
	var notes []string
	note := func(format string, a ...any) { notes = append(notes, fmt.Sprintf(format, a...)) }
	// unhonoured notes a limit the VM's size does not honour, which the
	// host cgroup does when there is one.
	unhonoured := func(format string, a ...any) {
		if !inCgroup {
			note(format, a...)
		}
	}
	if m := res.Memory; m != nil {
		if m.Limit != nil && *m.Limit > 0 {
			mem := (uint64(*m.Limit) + 1<<20 - 1) &^ (1<<20 - 1)
			if inCgroup && mem >= MinMemory+VMMReserve {
				mem -= VMMReserve
			} else if inCgroup && mem >= MinMemory {
				note("linux.resources.memory.limit: %s leaves the VMM no room beside the guest's %s: the host's cgroup may end the VM if its guest fills its memory", config.FormatSize(uint64(*m.Limit)), config.FormatSize(MinMemory))
				mem = MinMemory
			}
			if mem < MinMemory {
				note("linux.resources.memory.limit: %s is below what the guest needs; the VM has %s", config.FormatSize(uint64(*m.Limit)), config.FormatSize(MinMemory))
				mem = MinMemory
			}
			if most := min(h.Memory&^(1<<20-1), config.MaxMemory); h.Memory > 0 && mem > most {
				note("linux.resources.memory.limit: %s is more than the host has; the VM has %s", config.FormatSize(mem), config.FormatSize(most))
				mem = most
			}
			size.Memory = mem
		}
		if m.Reservation != nil && *m.Reservation > 0 {
			unhonoured("linux.resources.memory.reservation: not honoured: a VM's memory is its limit, there is no soft limit")
		}
		if m.Swap != nil && *m.Swap != 0 {
			unhonoured("linux.resources.memory.swap: not honoured: the VM has no swap")
		}
		if m.Kernel != nil || m.KernelTCP != nil {
			unhonoured("linux.resources.memory.kernel, kernelTCP: not honoured: the guest kernel's memory is the VM's")
		}
		if m.Swappiness != nil || m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			unhonoured("linux.resources.memory.swappiness, disableOOMKiller: not honoured: the guest kernel has no memory cgroup")
		}
	}
	if c := res.CPU; c != nil {
		cpus := 0
		if c.Quota != nil && *c.Quota > 0 {
			period := uint64(defaultPeriod)
			if c.Period != nil && *c.Period > 0 {
				period = *c.Period
			}
			cpus = int((uint64(*c.Quota) + period - 1) / period)
			if uint64(*c.Quota)%period != 0 {
				share := strconv.FormatFloat(float64(*c.Quota)/float64(period), 'f', -1, 64)
				if inCgroup {
					note("linux.resources.cpu.quota: %s CPUs of time become %d vCPUs, limited together to %s CPUs of time by the host cgroup", share, cpus, share)
				} else {
					note("linux.resources.cpu.quota: %s CPUs of time become %d vCPUs: a vCPU is not limited to a share of a host CPU", share, cpus)
				}
			}
		}
		if c.Cpus != "" {
			n, err := cpusetCount(c.Cpus)
			if err != nil {
				return Size{}, nil, fmt.Errorf("%w: linux.resources.cpu.cpus: %v", ErrBadBundle, err)
			}
			if cpus == 0 || n < cpus {
				cpus = n
			}
			if inCgroup {
				note("linux.resources.cpu.cpus: %q gives the VM %d vCPUs, run on those host CPUs by the host cgroup", c.Cpus, n)
			} else {
				note("linux.resources.cpu.cpus: %q gives the VM %d vCPUs; they are not pinned to those host CPUs", c.Cpus, n)
			}
		}
		if most := min(h.CPUs, config.MaxCPUs); cpus > most && most > 0 {
			note("linux.resources.cpu: %d CPUs asked, the host has %d; the VM has %d vCPUs", cpus, h.CPUs, most)
			cpus = most
		}
		if cpus > 0 {
			size.CPUs = cpus
		}
		if c.Shares != nil && *c.Shares > 0 {
			unhonoured("linux.resources.cpu.shares: not honoured: the VM's vCPUs are host threads of the default weight")
		}
		if c.Burst != nil && *c.Burst > 0 || c.Idle != nil && *c.Idle != 0 {
			unhonoured("linux.resources.cpu.burst, idle: not honoured: the VM's vCPUs are not in a CPU cgroup")
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 || c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			unhonoured("linux.resources.cpu.realtimeRuntime, realtimePeriod: not honoured: the VM's vCPUs are not real-time")
		}
		if c.Mems != "" {
			unhonoured("linux.resources.cpu.mems: not honoured: the VM's memory is not bound to host memory nodes")
		}
	}
	if len(res.Devices) > 0 {
		unhonoured("linux.resources.devices: the device cgroup is not applied: the guest has only the device nodes kiln makes (linux.devices)")
	}
	if res.Pids != nil && res.Pids.Limit > 0 {
		unhonoured("linux.resources.pids.limit: not honoured: the guest kernel has no pids cgroup (the VM's memory bounds its processes)")
	}
	if b := res.BlockIO; b != nil && (b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice)+len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0) {
		unhonoured("linux.resources.blockIO: not honoured: the VM's file systems are 9P shares, not host block devices")
	}
	if len(res.HugepageLimits) > 0 {
		unhonoured("linux.resources.hugepageLimits: not honoured: the guest has no huge pages")
	}
	if n := res.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		unhonoured("linux.resources.network: not honoured: the VM's traffic is its tap's, not a cgroup's")
	}
	if len(res.Rdma) > 0 {
		unhonoured("linux.resources.rdma: not honoured: the VM has no RDMA device")
	}
	if len(res.Unified) > 0 {
		keys := make([]string, 0, len(res.Unified))
		for k := range res.Unified {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		unhonoured("linux.resources.unified (%s): not honoured: the guest kernel has no cgroups", strings.Join(keys, ", "))
	}
	return size, notes, nil
}

// cpusetCount counts the CPUs of a cpuset list ("0-3,6").
func cpusetCount(set string) (int, error) {
	seen := map[int]bool{}
	for _, part := range strings.Split(set, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("%q is not a CPU list (like 0-3,6)", set)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("%q is not a CPU list (like 0-3,6)", set)
			}
		}
		if b-a >= 4096 || b >= 1<<16 {
			return 0, fmt.Errorf("%q names more CPUs than a machine has", set)
		}
		for i := a; i <= b; i++ {
			seen[i] = true
		}
	}
	return len(seen), nil
}
