package oci

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// A host process, as the state knows it: its pid and its start time
// (field 22 of /proc/PID/stat, in clock ticks since boot). kiln is not
// the parent of a container's VMM once `kiln create` has returned (conmon
// or the containerd shim is), so it cannot wait for it; it reads /proc.
// The start time tells a recycled pid from the process that had it.

// ProcStart returns pid's start time, and whether it is still running
// (not a zombie waiting for its parent to reap it).
func ProcStart(pid int) (start uint64, running bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 {
		return 0, false, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// f[0] is field 3 (state), f[19] field 22 (starttime).
	start, err = strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	state := f[0][0]
	return start, state != 'Z' && state != 'X', nil
}

// Alive reports whether pid is running and is the process that started
// at start.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, running, err := ProcStart(pid)
	return err == nil && running && s == start
}
