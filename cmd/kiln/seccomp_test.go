package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSeccompFilters: while a guest runs, every thread of kiln has the
// process's seccomp filter and each vCPU's thread its own on top (what
// /proc shows the kernel enforcing), -v says so, and the guest's command
// runs to its end under them. With --no-seccomp no thread has a filter.
// vmm/seccomp's tests show a filter refusing a call, from each kind of
// thread, in a process of their own.
func TestSeccompFilters(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)

	filtered := func(m map[string]string) bool { return m["kiln-vcpu0"] == "2" && m["kiln-vcpu1"] == "2" }
	stderr, threads := runWatchingThreads(t, filtered, "run", "-v", "--kernel", k, "--initrd", i, "--cpus", "2", "--", "sleep", "2")
	require.Regexp(t, `kiln: seccomp: filters on: the process's on every thread \(\d+ system calls\), each vCPU's on its thread \(\d+\)`, stderr)
	require.Equal(t, "2", threads["kiln-vcpu0"], "vCPU 0's thread: the process's filter and its own")
	require.Equal(t, "2", threads["kiln-vcpu1"], "vCPU 1's thread")
	require.Equal(t, "1", threads["kiln"], "every other thread: the process's")

	running := func(m map[string]string) bool { _, ok := m["kiln-vcpu0"]; return ok }
	stderr, threads = runWatchingThreads(t, running, "run", "-v", "--no-seccomp", "--kernel", k, "--initrd", i, "--", "sleep", "1")
	require.NotContains(t, stderr, "kiln: seccomp")
	require.Equal(t, "0", threads["kiln-vcpu0"])
	require.Equal(t, "0", threads["kiln"])
}

// runWatchingThreads runs kiln with args, which must succeed, and reads
// its threads' seccomp filters while the guest runs, until ready says
// they are what it waits for (the vCPU threads name themselves, then put
// on their filters), and once more: it returns kiln's stderr, and for
// each thread name (kiln, kiln-vcpuN) the number of filters
// /proc/PID/task/TID/status gave its threads, "1/2" if they differed.
func runWatchingThreads(t *testing.T, ready func(map[string]string) bool, args ...string) (string, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBinary, args...)
	cmd.Env = append(os.Environ(), "KILN_SECCOMP=") // on: not KILN_SECCOMP=log
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var threads map[string]string
	for seen := 0; seen < 2; {
		select {
		case err := <-done:
			t.Fatalf("kiln %q ended (%v) before its threads were seen (last: %v)\nstdout:\n%s\nstderr:\n%s", args, err, threads, stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		threads = filters(cmd.Process.Pid)
		if seen > 0 || ready(threads) {
			seen++
		}
	}
	t.Logf("kiln %q: seccomp filters per thread name: %v", args, threads)
	err := <-done
	require.NoError(t, err, "kiln %q\nstdout:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
	return stderr.String(), threads
}

// filters reads Seccomp_filters of each thread of process pid, by name.
func filters(pid int) map[string]string {
	m := map[string]string{}
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	re := regexp.MustCompile(`Seccomp_filters:\s*(\d+)`)
	for _, d := range dirs {
		comm, err1 := os.ReadFile(filepath.Join(d, "comm"))
		status, err2 := os.ReadFile(filepath.Join(d, "status"))
		f := re.FindSubmatch(status)
		if err1 != nil || err2 != nil || f == nil {
			continue // the thread ended
		}
		name := strings.TrimSpace(string(comm))
		if old, ok := m[name]; ok && old != string(f[1]) {
			m[name] = old + "/" + string(f[1])
		} else {
			m[name] = string(f[1])
		}
	}
	return m
}
