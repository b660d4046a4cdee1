package main

// Soak: many VMs one after another, and many at once, from a long-lived
// parent (this test process, as kiln bench or an OCI shim would be): none
// fails, the parent does not grow, and nothing is left behind.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// soakCounts are how many VMs the soak starts one after another and at
// once: a short soak in `go test`, the full one (100 and 16) with `make
// soak`, which sets KILN_SOAK=100,16.
func soakCounts(t *testing.T) (sequential, concurrent int) {
	sequential, concurrent = 6, 4
	if v := os.Getenv("KILN_SOAK"); v != "" {
		a, b, ok := strings.Cut(v, ",")
		s, err1 := strconv.Atoi(a)
		c, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || s < 1 || c < 1 {
			t.Fatalf("KILN_SOAK=%q: want SEQUENTIAL,CONCURRENT", v)
		}
		sequential, concurrent = s, c
	}
	return sequential, concurrent
}

// TestSoak starts VMs from a warm snapshot with a vsock device each, one
// after another and then all at once, then as many OCI containers (kiln
// run on a bundle, as an engine runs one: create, start, wait, delete),
// and checks that every one ran its command, that this process's file
// descriptors, threads and heap are what they were, that no kiln process
// outlived its VM, that every socket file was removed and that the OCI
// state root is empty again.
func TestSoak(t *testing.T) {
	k, i := guestFiles(t)
	sequential, concurrent := soakCounts(t)
	cache, sockets := t.TempDir(), t.TempDir()
	env := []string{"KILN_CACHE=" + cache}
	deadline := func(n int) time.Duration {
		if n < 1000 {
			return bootDeadline
		}
		return atOnceDeadline(concurrent)
	}
	runVM := func(n int) run {
		sock := filepath.Join(sockets, fmt.Sprintf("vm%d.sock", n))
		return runEnvDeadline(t, env, deadline(n), "", kilnBinary, "run", "--warm", "--kernel", k, "--initrd", i,
			"--vsock", fmt.Sprintf("%d,%s", 3+n, sock), "--", "sh", "-c", fmt.Sprintf("echo vm %d", n))
	}
	// The first takes the warm snapshot; the counts start after it.
	r := runVM(0)
	require.Equal(t, 0, r.code, r.stderr)
	// ... and the first container takes the OCI snapshot.
	rootfs := ociGuest(t)
	o := newOCIRuntime(t, cache)
	bundle := writeBundle(t, rootfs, "sh", "-c", "echo container $(cat /proc/sys/kernel/hostname)")
	runContainer := func(n int) run {
		return runEnvDeadline(t, o.env, deadline(n), "", kilnBinary, "--root", o.root, "run", "--bundle", bundle, fmt.Sprintf("soak-%d", n))
	}
	r = runContainer(0)
	require.Equal(t, 0, r.code, r.stderr)
	fds, threads, heap := openFDs(t), threadCount(t), heapInUse()
	rss := residentKiB(t)

	start := time.Now()
	for n := 1; n <= sequential; n++ {
		r := runVM(n)
		require.Equal(t, 0, r.code, "VM %d: %s", n, r.stderr)
		require.Equal(t, fmt.Sprintf("vm %d\n", n), r.stdout)
	}
	each := time.Since(start) / time.Duration(sequential)

	runs, together := atOnce(concurrent, func(n int) run { return runVM(1000 + n) })
	for n, r := range runs {
		require.Equal(t, 0, r.code, "VM %d of %d at once: %s", n, concurrent, r.stderr)
		require.Equal(t, fmt.Sprintf("vm %d\n", 1000+n), r.stdout)
	}
	t.Logf("soak: %d VMs one after another, %v each; %d at once in %v", sequential, each.Round(time.Millisecond), concurrent, together.Round(time.Millisecond))

	start = time.Now()
	for n := 1; n <= sequential; n++ {
		r := runContainer(n)
		require.Equal(t, 0, r.code, "container %d: %s", n, r.stderr)
		require.Equal(t, "container kiln-oci\n", r.stdout)
	}
	eachOCI := time.Since(start) / time.Duration(sequential)
	runs, togetherOCI := atOnce(concurrent, func(n int) run { return runContainer(1000 + n) })
	for n, r := range runs {
		require.Equal(t, 0, r.code, "container %d of %d at once: %s", n, concurrent, r.stderr)
		require.Equal(t, "container kiln-oci\n", r.stdout)
	}
	t.Logf("soak: %d containers one after another, %v each; %d at once in %v", sequential, eachOCI.Round(time.Millisecond), concurrent, togetherOCI.Round(time.Millisecond))

	runtime.GC()
	t.Logf("soak: the parent: %d file descriptors, %d threads, heap %d KiB, resident %d KiB before; %d, %d, %d KiB, %d KiB after",
		fds, threads, heap>>10, rss, openFDs(t), threadCount(t), heapInUse()>>10, residentKiB(t))
	require.Equal(t, fds, openFDs(t), "the parent's file descriptors")
	// Go keeps the threads it made for waits that blocked at once (one
	// per VM running concurrently, and a few of its own); a leak would
	// grow with the number of VMs, not stay within this.
	require.LessOrEqual(t, threadCount(t), threads+concurrent+2, "the parent's threads")
	// What the parent keeps of each run is its output; 4 MiB for a few
	// hundred short strings is growth.
	require.Less(t, heapInUse(), heap+4<<20, "the parent's heap")
	require.Empty(t, kilnProcesses(t), "kiln processes left running")
	left, err := filepath.Glob(filepath.Join(sockets, "*"))
	require.NoError(t, err)
	require.Empty(t, left, "socket files left behind")
	state, err := os.ReadDir(o.root)
	require.NoError(t, err)
	require.Empty(t, state, "OCI state left behind")
}

// atOnceDeadline is the deadline of each of k guests run at once. A
// guest's work is CPU work on the host's cores (emulated kernel code, on
// kvm-pvm), so k guests on c cores each take about k/c times as long as
// one alone.
func atOnceDeadline(k int) time.Duration {
	c := runtime.NumCPU()
	return bootDeadline * time.Duration(max(1, (k+c-1)/c))
}

// atOnce runs k of f at the same time, f(0) to f(k-1), and returns
// their results and how long all of them took. A run whose f did not
// return (a helper's t.Fatal ends only its own goroutine: a deadline
// passed, say) is left with exit code -1 and says so.
func atOnce(k int, f func(n int) run) ([]run, time.Duration) {
	start := time.Now()
	runs := make([]run, k)
	var wg sync.WaitGroup
	for n := range runs {
		runs[n] = run{code: -1, stderr: "did not return: see the test's log above"}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[n] = f(n)
		}()
	}
	wg.Wait()
	return runs, time.Since(start)
}

// heapInUse is this process's live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// residentKiB is this process's resident set (VmRSS), for the log.
func residentKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// threadCount is this process's number of threads.
func threadCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	return len(ents)
}

// kilnProcesses lists the running processes of the kiln binary under test.
func kilnProcesses(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var found []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && exe == kilnBinary {
			found = append(found, e.Name())
		}
	}
	return found
}
