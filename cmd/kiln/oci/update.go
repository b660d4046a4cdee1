package oci

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-vmm/kiln/vmm/config"
)

// kiln update: runc update's change of a running container's resources.
//
// A kiln container's memory and vCPUs are its VM's, fixed when it was
// created (resources.go): there is no memory balloon and no vCPU
// hotplug, and the guest has no cgroups. What can change is what the
// host's cgroup gives the VMM (cgroup.go): CPU shares, quota and cpuset
// (the vCPU threads are the VMM's), the process limit, I/O weights and
// throttles, hugepage limits. With a host cgroup, update writes those into
// it as runc does; without one (no linux.cgroupsPath) every change is
// refused, each by name. A memory limit is refused unless it is the one
// the cgroup has: engines send the whole linux.resources to change one
// part of it, and an unchanged limit is no change.

// UpdateFlags are the runc update flags given, by name without "--",
// with their values.
type UpdateFlags map[string]string

// UpdateFlagNames are runc update's resource flags.
var UpdateFlagNames = []string{"memory", "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp",
	"cpuset-cpus", "cpuset-mems", "cpu-quota", "cpu-period", "cpu-rt-period", "cpu-rt-runtime", "cpu-share",
	"blkio-weight", "pids-limit", "l3-cache-schema", "mem-bw-schema"}

// apply sets the fields of res the flags name, in runc's units (bytes for
// memory, with an optional k, m, g or t suffix; -1 for no limit).
func (f UpdateFlags) apply(res *specs.LinuxResources) error {
	mem := func() *specs.LinuxMemory {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		return res.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		return res.CPU
	}
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		v := f[name]
		bad := func(err error) error { return fmt.Errorf("%w: --%s %q: %v", config.ErrUsage, name, v, err) }
		var err error
		switch name {
		case "memory", "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp":
			var n int64
			if n, err = parseBytes(v); err != nil {
				return bad(err)
			}
			m := mem()
			switch name {
			case "memory":
				m.Limit = &n
			case "memory-reservation":
				m.Reservation = &n
			case "memory-swap":
				m.Swap = &n
			case "kernel-memory":
				m.Kernel = &n
			default:
				m.KernelTCP = &n
			}
		case "cpu-share", "cpu-period", "cpu-rt-period":
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 64); err != nil {
				return bad(err)
			}
			switch c := cpu(); name {
			case "cpu-share":
				c.Shares = &n
			case "cpu-period":
				c.Period = &n
			default:
				c.RealtimePeriod = &n
			}
		case "cpu-quota", "cpu-rt-runtime":
			var n int64
			if n, err = strconv.ParseInt(v, 10, 64); err != nil {
				return bad(err)
			}
			if c := cpu(); name == "cpu-quota" {
				c.Quota = &n
			} else {
				c.RealtimeRuntime = &n
			}
		case "cpuset-cpus":
			cpu().Cpus = v
		case "cpuset-mems":
			cpu().Mems = v
		case "pids-limit":
			var n int64
			if n, err = strconv.ParseInt(v, 10, 64); err != nil {
				return bad(err)
			}
			res.Pids = &specs.LinuxPids{Limit: n}
		case "blkio-weight":
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 16); err != nil {
				return bad(err)
			}
			w := uint16(n)
			res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
		case "l3-cache-schema", "mem-bw-schema":
			return fmt.Errorf("%w: --%s: Intel RDT is the host's, and a VM's vCPUs are not given a class of their own", ErrUnsupported, name)
		default:
			return fmt.Errorf("%w: --%s is not a flag of update", config.ErrUsage, name)
		}
	}
	return nil
}

// parseBytes is a memory size as runc's flags take it: bytes, or a number
// with a k, m, g or t suffix (powers of 1024, "kb", "mib" alike); -1 is
// no limit.
func parseBytes(s string) (int64, error) {
	if strings.TrimSpace(s) == "-1" {
		return -1, nil
	}
	t, shift := config.SplitSize(s, 0)
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)>>shift {
		return 0, fmt.Errorf("not a size in bytes")
	}
	return v << shift, nil
}

// asked names the parts of res that are set ("linux.resources.cpu"); none
// is no change.
func asked(res *specs.LinuxResources) []string {
	data, err := json.Marshal(res)
	if err != nil {
		return nil
	}
	var parts map[string]json.RawMessage
	if json.Unmarshal(data, &parts) != nil {
		return nil
	}
	var out []string
	for k, v := range parts {
		if s := strings.TrimSpace(string(v)); s != "null" && s != "{}" && s != "[]" {
			out = append(out, "linux.resources."+k)
		}
	}
	sort.Strings(out)
	return out
}

// Update changes a running container's resources: the flags given
// (runc update's), then a linux.resources JSON file over them (resources;
// "-" for stdin).
func (r *Runtime) Update(id string, flags UpdateFlags, resources string) error {
	c, err := r.Store.Open(id, false)
	if err != nil {
		return err
	}
	if !live(c.Status()) {
		return fmt.Errorf("%w: %s", ErrNotRunning, id)
	}
	res := &specs.LinuxResources{}
	if err := flags.apply(res); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	if resources != "" {
		var data []byte
		if resources == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(resources)
		}
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if err := json.Unmarshal(data, res); err != nil {
			return fmt.Errorf("update: %w: %s is not linux.resources: %v", config.ErrUsage, resources, err)
		}
	}
	// As runc update: the device rules stay those of create (engines
	// send them back unchanged with the rest).
	res.Devices = nil
	what := asked(res)
	if len(what) == 0 {
		return nil
	}
	plan, err := LoadPlan(c.PlanPath())
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	size := plan.VMSize()
	if plan.Cgroup == nil {
		return fmt.Errorf("update %s: %w: %s: the VM's memory (%s) and vCPUs (%d) were fixed when it was created (no balloon, no hotplug), and it has no host cgroup to change (config.json gave no linux.cgroupsPath)", id, ErrUnsupported, strings.Join(what, ", "), config.FormatSize(size.Memory), size.CPUs)
	}
	if m := res.Memory; m != nil && m.Limit != nil && *m.Limit == 0 {
		m.Limit = nil // runc's "not given"
	}
	if m := res.Memory; m != nil && m.Limit != nil {
		cur, err := plan.Cgroup.memoryLimit()
		if err != nil {
			return fmt.Errorf("update %s: %w", id, err)
		}
		if *m.Limit != cur {
			return fmt.Errorf("update %s: %w: linux.resources.memory.limit %d: the VM's memory (%s) was fixed when it was created (no balloon), and its host cgroup's limit (%d) stays the one it was sized by", id, ErrUnsupported, *m.Limit, config.FormatSize(size.Memory), cur)
		}
		m.Limit = nil // unchanged
	}
	notes, err := plan.Cgroup.ApplyLimits(res)
	for _, n := range notes {
		if r.Log.Warn(id+": "+n) != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	return nil
}

// memoryLimit is the memory limit the cgroup has now, in bytes; -1 for
// none.
func (cg *Cgroup) memoryLimit() (int64, error) {
	dir, ok := cg.dir("memory")
	file := "memory.limit_in_bytes"
	if cg.V2 {
		file = "memory.max"
	}
	if !ok {
		return 0, fmt.Errorf("the host has no memory cgroup controller mounted")
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, fmt.Errorf("read the cgroup's memory limit: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read the cgroup's memory limit: %s holds %q", file, s)
	}
	if !cg.V2 && v >= 1<<62 { // v1's "no limit" is the largest page-aligned value
		return -1, nil
	}
	return v, nil
}
