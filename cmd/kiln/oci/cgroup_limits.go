package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// linux.resources written into the container's host cgroup (cgroup.go),
// file by file as runc writes them. What the host cannot take fails
// kiln create with one line naming the limit and the file, as runc's
// create fails: a limit is never dropped silently. The exceptions, each
// a note in the runtime's log instead, are what runc too lets pass: a
// kernel memory limit the host's kernel ignores (it reads back
// unchanged), a swap limit on a host without swap accounting, and on
// cgroup v2 the v1-only knobs (kernel memory, swappiness, the OOM
// killer switch, net_cls and net_prio) and the device rules (v2 takes
// them as an eBPF program, which kiln does not load; the guest has only
// the device nodes kiln makes).

// limitWriter writes one container's limits and gathers their notes. Its
// first error stops it: every later write is skipped, and ApplyLimits
// returns that error.
type limitWriter struct {
	cg    *Cgroup
	notes []string
	err   error
}

func (w *limitWriter) note(format string, a ...any) {
	w.notes = append(w.notes, fmt.Sprintf(format, a...))
}

// fail records err, unless an error came first.
func (w *limitWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// set writes value to file in the directory of controller's hierarchy.
func (w *limitWriter) set(what, controller, file, value string) {
	if w.err == nil {
		w.err = w.write(what, controller, file, value)
	}
}

func (w *limitWriter) write(what, controller, file, value string) error {
	dir, ok := w.cg.dir(controller)
	if !ok {
		return fmt.Errorf("linux.resources.%s: the host has no %s cgroup controller mounted", what, controller)
	}
	path := filepath.Join(dir, file)
	if err := writeCgroupFile(path, []byte(value)); err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("linux.resources.%s: the host's cgroup has no %s (in %s)", what, file, dir)
		}
		return fmt.Errorf("linux.resources.%s: write %q to %s: %w", what, value, path, unwrapPath(err))
	}
	return nil
}

// setKept is set for a limit the host may ignore: it reads the file
// back, and a value that did not stay is a note, not an error.
func (w *limitWriter) setKept(what, controller, file string, value int64) {
	if w.set(what, controller, file, strconv.FormatInt(value, 10)); w.err != nil {
		return
	}
	dir, _ := w.cg.dir(controller)
	got, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil || strings.TrimSpace(string(got)) != strconv.FormatInt(value, 10) {
		w.note("linux.resources.%s: not honoured: the host's kernel ignores %s (it reads %s)", what, file, strings.TrimSpace(string(got)))
	}
}

// has says whether controller's directory has file: a knob some hosts
// lack (swap accounting) is a note there, not an error.
func (w *limitWriter) has(controller, file string) bool {
	dir, _ := w.cg.dir(controller)
	_, err := os.Stat(filepath.Join(dir, file))
	return !os.IsNotExist(err)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ApplyLimits writes res into the container's cgroup and returns the
// notes for the log.
func (cg *Cgroup) ApplyLimits(res *specs.LinuxResources) ([]string, error) {
	w := &limitWriter{cg: cg}
	if res == nil {
		return nil, nil
	}
	if cg.V2 {
		w.v2(res)
	} else {
		w.v1(res)
	}
	return w.notes, w.err
}

func i64s(v int64) string { return strconv.FormatInt(v, 10) }

// deviceRule is a device cgroup rule as devices.allow takes it
// ("c 10:229 rwm"; no type: every device, "a").
func deviceRule(d specs.LinuxDeviceCgroup) string {
	typ := d.Type
	if typ == "" {
		typ = "a"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return i64s(*p)
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	if typ == "a" {
		return "a" // every device, whatever the numbers say
	}
	return fmt.Sprintf("%s %s:%s %s", typ, num(d.Major), num(d.Minor), access)
}

// v1 writes res on cgroup v1, one file per limit.
func (w *limitWriter) v1(res *specs.LinuxResources) {
	if m := res.Memory; m != nil {
		if m.Limit != nil && *m.Limit != 0 {
			w.set("memory.limit", "memory", "memory.limit_in_bytes", i64s(*m.Limit))
		}
		if m.Swap != nil && *m.Swap != 0 {
			if w.has("memory", "memory.memsw.limit_in_bytes") {
				w.set("memory.swap", "memory", "memory.memsw.limit_in_bytes", i64s(*m.Swap))
			} else {
				w.note("linux.resources.memory.swap: not honoured: the host has no swap accounting (memory.memsw.limit_in_bytes)")
			}
		}
		if m.Reservation != nil && *m.Reservation != 0 {
			w.set("memory.reservation", "memory", "memory.soft_limit_in_bytes", i64s(*m.Reservation))
		}
		if m.Kernel != nil && *m.Kernel != 0 {
			w.setKept("memory.kernel", "memory", "memory.kmem.limit_in_bytes", *m.Kernel)
		}
		if m.KernelTCP != nil && *m.KernelTCP != 0 {
			w.setKept("memory.kernelTCP", "memory", "memory.kmem.tcp.limit_in_bytes", *m.KernelTCP)
		}
		if m.Swappiness != nil && *m.Swappiness <= 100 {
			w.set("memory.swappiness", "memory", "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10))
		} else if m.Swappiness != nil && *m.Swappiness != ^uint64(0) { // runc's "unset" is -1
			w.fail(fmt.Errorf("%w: linux.resources.memory.swappiness %d is above 100", ErrBadBundle, *m.Swappiness))
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			w.set("memory.disableOOMKiller", "memory", "memory.oom_control", "1")
		}
	}
	if c := res.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			w.set("cpu.shares", "cpu", "cpu.shares", strconv.FormatUint(*c.Shares, 10))
		}
		if c.Period != nil && *c.Period != 0 {
			w.set("cpu.period", "cpu", "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10))
		}
		if c.Quota != nil && *c.Quota != 0 {
			w.set("cpu.quota", "cpu", "cpu.cfs_quota_us", i64s(*c.Quota))
		}
		if c.Burst != nil {
			w.set("cpu.burst", "cpu", "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10))
		}
		if c.Idle != nil && *c.Idle != 0 {
			w.set("cpu.idle", "cpu", "cpu.idle", i64s(*c.Idle))
		}
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			w.set("cpu.realtimePeriod", "cpu", "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10))
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			w.set("cpu.realtimeRuntime", "cpu", "cpu.rt_runtime_us", i64s(*c.RealtimeRuntime))
		}
		if c.Cpus != "" {
			w.set("cpu.cpus", "cpuset", "cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			w.set("cpu.mems", "cpuset", "cpuset.mems", c.Mems)
		}
	}
	if p := res.Pids; p != nil && p.Limit != 0 {
		v := i64s(p.Limit)
		if p.Limit < 0 {
			v = "max"
		}
		w.set("pids.limit", "pids", "pids.max", v)
	}
	if b := res.BlockIO; b != nil {
		if b.Weight != nil {
			file := "blkio.weight"
			if !w.has("blkio", file) && w.has("blkio", "blkio.bfq.weight") {
				file = "blkio.bfq.weight" // a host whose I/O scheduler is BFQ has only its file
			}
			w.set("blockIO.weight", "blkio", file, strconv.Itoa(int(*b.Weight)))
		}
		if b.LeafWeight != nil {
			w.set("blockIO.leafWeight", "blkio", "blkio.leaf_weight", strconv.Itoa(int(*b.LeafWeight)))
		}
		for _, d := range b.WeightDevice {
			if d.Weight != nil {
				w.set("blockIO.weightDevice", "blkio", "blkio.weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight))
			}
			if d.LeafWeight != nil {
				w.set("blockIO.weightDevice", "blkio", "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.LeafWeight))
			}
		}
		for _, t := range []struct {
			what, file string
			devs       []specs.LinuxThrottleDevice
		}{
			{"blockIO.throttleReadBpsDevice", "blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
			{"blockIO.throttleWriteBpsDevice", "blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
			{"blockIO.throttleReadIOPSDevice", "blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
			{"blockIO.throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				w.set(t.what, "blkio", t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate))
			}
		}
	}
	for _, h := range res.HugepageLimits {
		w.set("hugepageLimits", "hugetlb", "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10))
	}
	if n := res.Network; n != nil {
		if n.ClassID != nil {
			w.set("network.classID", "net_cls", "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10))
		}
		for _, p := range n.Priorities {
			w.set("network.priorities", "net_prio", "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority))
		}
	}
	for _, d := range res.Devices {
		file := "devices.deny"
		if d.Allow {
			file = "devices.allow"
		}
		w.set("devices", "devices", file, deviceRule(d))
	}
	w.rdma(res.Rdma)
	if len(res.Unified) > 0 {
		w.fail(fmt.Errorf("%w: linux.resources.unified: the host's cgroups are v1, and unified names v2 files", ErrUnsupported))
	}
}

func (w *limitWriter) rdma(rdma map[string]specs.LinuxRdma) {
	devs := make([]string, 0, len(rdma))
	for d := range rdma {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	for _, d := range devs {
		r := rdma[d]
		v := d
		if r.HcaHandles != nil {
			v += fmt.Sprintf(" hca_handle=%d", *r.HcaHandles)
		}
		if r.HcaObjects != nil {
			v += fmt.Sprintf(" hca_object=%d", *r.HcaObjects)
		}
		w.set("rdma", "rdma", "rdma.max", v)
	}
}

// sharesToWeight is cgroup v2's cpu.weight (1-10000) for cgroup v1's
// cpu.shares (2-262144), as runc and crun map it.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// blkioToIOWeight is cgroup v2's io.weight (1-10000) for v1's
// blkio.weight (10-1000).
func blkioToIOWeight(w uint16) uint64 {
	if w < 10 {
		w = 10
	}
	if w > 1000 {
		w = 1000
	}
	return 1 + (uint64(w)-10)*9999/990
}

// v2 writes res on cgroup v2, where the files have other names and some
// limits other units.
func (w *limitWriter) v2(res *specs.LinuxResources) {
	max := func(v int64) string {
		if v < 0 {
			return "max"
		}
		return i64s(v)
	}
	if m := res.Memory; m != nil {
		if m.Limit != nil && *m.Limit != 0 {
			w.set("memory.limit", "memory", "memory.max", max(*m.Limit))
		}
		if m.Swap != nil && *m.Swap != 0 {
			// v1's swap is memory and swap together; v2's is swap alone.
			var swap string
			switch {
			case *m.Swap < 0:
				swap = "max"
			case m.Limit == nil || *m.Limit <= 0:
				w.fail(fmt.Errorf("%w: linux.resources.memory.swap %d without a memory limit", ErrBadBundle, *m.Swap))
			case *m.Swap < *m.Limit:
				w.fail(fmt.Errorf("%w: linux.resources.memory.swap %d is below the memory limit %d (it counts memory and swap together)", ErrBadBundle, *m.Swap, *m.Limit))
			default:
				swap = i64s(*m.Swap - *m.Limit)
			}
			if w.has("memory", "memory.swap.max") {
				w.set("memory.swap", "memory", "memory.swap.max", swap)
			} else {
				w.note("linux.resources.memory.swap: not honoured: the host has no swap accounting (memory.swap.max)")
			}
		}
		if m.Reservation != nil && *m.Reservation != 0 {
			w.set("memory.reservation", "memory", "memory.low", max(*m.Reservation))
		}
		if m.Kernel != nil || m.KernelTCP != nil {
			w.note("linux.resources.memory.kernel, kernelTCP: not honoured: cgroup v2 has no kernel memory limit (it counts kernel memory in memory.max)")
		}
		if m.Swappiness != nil && *m.Swappiness != ^uint64(0) || m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			w.note("linux.resources.memory.swappiness, disableOOMKiller: not honoured: cgroup v2 has neither")
		}
	}
	if c := res.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			w.set("cpu.shares", "cpu", "cpu.weight", strconv.FormatUint(sharesToWeight(*c.Shares), 10))
		}
		if c.Quota != nil && *c.Quota != 0 || c.Period != nil && *c.Period != 0 {
			quota, period := "max", uint64(defaultPeriod)
			if c.Quota != nil && *c.Quota > 0 {
				quota = i64s(*c.Quota)
			}
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
			}
			w.set("cpu.quota", "cpu", "cpu.max", fmt.Sprintf("%s %d", quota, period))
		}
		if c.Burst != nil {
			w.set("cpu.burst", "cpu", "cpu.max.burst", strconv.FormatUint(*c.Burst, 10))
		}
		if c.Idle != nil && *c.Idle != 0 {
			w.set("cpu.idle", "cpu", "cpu.idle", i64s(*c.Idle))
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 || c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			w.fail(fmt.Errorf("%w: linux.resources.cpu.realtimeRuntime, realtimePeriod: cgroup v2 has no real-time CPU limits", ErrUnsupported))
		}
		if c.Cpus != "" {
			w.set("cpu.cpus", "cpuset", "cpuset.cpus", c.Cpus)
		}
		if c.Mems != "" {
			w.set("cpu.mems", "cpuset", "cpuset.mems", c.Mems)
		}
	}
	if p := res.Pids; p != nil && p.Limit != 0 {
		w.set("pids.limit", "pids", "pids.max", max(p.Limit))
	}
	if b := res.BlockIO; b != nil {
		if b.Weight != nil {
			w.set("blockIO.weight", "io", "io.weight", fmt.Sprintf("default %d", blkioToIOWeight(*b.Weight)))
		}
		if b.LeafWeight != nil {
			w.note("linux.resources.blockIO.leafWeight: not honoured: cgroup v2 has no leaf weight")
		}
		for _, d := range b.WeightDevice {
			if d.Weight != nil {
				w.set("blockIO.weightDevice", "io", "io.weight", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, blkioToIOWeight(*d.Weight)))
			}
		}
		for _, t := range []struct {
			what, key string
			devs      []specs.LinuxThrottleDevice
		}{
			{"blockIO.throttleReadBpsDevice", "rbps", b.ThrottleReadBpsDevice},
			{"blockIO.throttleWriteBpsDevice", "wbps", b.ThrottleWriteBpsDevice},
			{"blockIO.throttleReadIOPSDevice", "riops", b.ThrottleReadIOPSDevice},
			{"blockIO.throttleWriteIOPSDevice", "wiops", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				w.set(t.what, "io", "io.max", fmt.Sprintf("%d:%d %s=%d", d.Major, d.Minor, t.key, d.Rate))
			}
		}
	}
	for _, h := range res.HugepageLimits {
		w.set("hugepageLimits", "hugetlb", "hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10))
	}
	if n := res.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		w.note("linux.resources.network: not honoured: cgroup v2 has no net_cls or net_prio")
	}
	if len(res.Devices) > 0 {
		w.note("linux.resources.devices: not applied on cgroup v2 (kiln loads no device eBPF program); the guest has only the device nodes kiln makes (linux.devices)")
	}
	w.rdma(res.Rdma)
	keys := make([]string, 0, len(res.Unified))
	for k := range res.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, "/") || strings.HasPrefix(k, ".") || strings.HasPrefix(k, "cgroup.") {
			w.fail(fmt.Errorf("%w: linux.resources.unified: %q is not a controller's file", ErrBadBundle, k))
			return
		}
		controller, _, _ := strings.Cut(k, ".")
		w.set("unified."+k, controller, k, res.Unified[k])
	}
}
