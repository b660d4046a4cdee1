package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// What a serving instance costs is the memory of every process it keeps
// running: for a container engine its monitor (conmon, containerd's
// shim) and what runs under it (the container's process, or kiln's
// VMM), for `kiln run` the VMM. Each process's RSS and PSS come from
// /proc/PID/smaps_rollup; a VMM's guest memory from its smaps
// (vmmMemory).

// parentOf reads a process's parent from /proc/PID/stat.
func parentOf(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatPPID(string(data))
}

// parseStatPPID takes the parent pid out of a /proc/PID/stat line, whose
// second field, the command in parentheses, may hold spaces and ")".
func parseStatPPID(stat string) (int, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc stat line")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("bad /proc stat line")
	}
	return strconv.Atoi(f[1])
}

// processTree returns root and every process below it.
func processTree(root int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, err := parentOf(pid); err == nil {
			children[pp] = append(children[pp], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out) && len(out) < 4096; i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// rollupKiB reads Rss and Pss of a process from /proc/PID/smaps_rollup.
func rollupKiB(pid int) (rss, pss uint64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	r, ok1 := statusKiB(data, "Rss:")
	p, ok2 := statusKiB(data, "Pss:")
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("no Rss or Pss in /proc/%d/smaps_rollup", pid)
	}
	return r, p, nil
}

// instanceMemory is the memory of the processes pids, summed; if vmm is
// one of them (non-zero), its guest memory and overhead too, for a
// guest of guestKiB.
func instanceMemory(pids []int, vmm int, guestKiB uint64) (Memory, error) {
	var m Memory
	for _, pid := range pids {
		r, p, err := rollupKiB(pid)
		if err != nil {
			continue // a short-lived helper that ended meanwhile
		}
		m.RSS += r
		m.PSS += p
		m.Processes++
	}
	if m.Processes == 0 {
		return m, fmt.Errorf("none of the instance's processes %v could be read", pids)
	}
	if vmm != 0 {
		v, err := readVMMMemory(vmm, guestKiB)
		if err != nil {
			return m, fmt.Errorf("the VMM's memory: %w", err)
		}
		m.Guest, m.Overhead = v.Guest, v.Overhead
	}
	return m, nil
}

// alive reports whether pid is a process that has not ended (a zombie
// has ended).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(string(data[i+1:])), "Z")
}
