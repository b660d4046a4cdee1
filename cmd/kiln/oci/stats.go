package oci

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// What a container costs the host, as `kiln events --stats` reports it in
// the shape of runc's (its types/events.go): the container is its VMM
// process, so its CPU time is the VMM's (the vCPUs' time in the guest
// included, user and kernel as the host counts them), and its memory is
// the VMM's resident set, which holds the guest memory the guest touched.

// Event is one line of kiln events.
type Event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// Stats is the data of a "stats" event.
type Stats struct {
	CPU    StatsCPU    `json:"cpu"`
	Memory StatsMemory `json:"memory"`
	Pids   StatsPids   `json:"pids"`
}

type StatsCPU struct {
	Usage struct {
		Total  uint64 `json:"total"` // nanoseconds
		Kernel uint64 `json:"kernel"`
		User   uint64 `json:"user"`
	} `json:"usage"`
}

type StatsMemory struct {
	Usage struct {
		Usage uint64 `json:"usage"` // bytes: the VMM's resident set
		Max   uint64 `json:"max"`   // its peak
		Limit uint64 `json:"limit"` // the guest's memory
	} `json:"usage"`
}

type StatsPids struct {
	Current uint64 `json:"current"` // the container's host processes: its VMM
}

// Stats reads what the container's VMM costs now.
func (r *Runtime) Stats(id string) (*Stats, error) {
	c, err := r.Store.Open(id, false)
	if err != nil {
		return nil, err
	}
	if !live(c.Status()) {
		return nil, fmt.Errorf("%w: %s", ErrNotRunning, id)
	}
	s := &Stats{}
	user, kernel, err := cpuTimes(c.Pid)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", id, err)
	}
	s.CPU.Usage.User, s.CPU.Usage.Kernel, s.CPU.Usage.Total = user, kernel, user+kernel
	rss, hwm, err := residentSet(c.Pid)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", id, err)
	}
	s.Memory.Usage.Usage, s.Memory.Usage.Max = rss, hwm
	if plan, err := LoadPlan(c.PlanPath()); err == nil {
		s.Memory.Usage.Limit = plan.VMSize().Memory
	}
	s.Pids.Current = 1
	return s, nil
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on every
// Linux kiln runs on.
const clockTick = 100

// cpuTimes reads a process's user and system time, in nanoseconds.
func cpuTimes(pid int) (user, kernel uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := bytes.Fields(b[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// f[11] is field 14 (utime), f[12] field 15 (stime).
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return ut * 1e9 / clockTick, st * 1e9 / clockTick, nil
}

// residentSet reads a process's resident set and its peak, in bytes.
func residentSet(pid int) (rss, hwm uint64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %v", pid, k, err)
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm, s.Err()
}
