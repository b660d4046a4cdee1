package main

// linux.resources as the VM's size, with real guests: the guest sees the
// memory and CPUs the engine asked for (oci/resources.go), and the limits
// a VM cannot honour are warnings in the runtime's log.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

// sizeScript prints the guest's CPUs and MemTotal (u-root has no nproc).
const sizeScript = "grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo"

// requireSize checks sizeScript's output: cpus CPUs, and a MemTotal of
// about mib MiB (the kernel keeps some memory for itself).
func requireSize(t *testing.T, out string, cpus, mib int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Equal(t, strconv.Itoa(cpus), strings.TrimSpace(lines[0]), "CPUs seen by the guest")
	m := regexp.MustCompile(`MemTotal:\s+(\d+) kB`).FindStringSubmatch(lines[1])
	require.NotNil(t, m, lines[1])
	kb, _ := strconv.Atoi(m[1])
	require.InDelta(t, mib*1024-20*1024, kb, 20*1024, "MemTotal %d kB for a %d MiB VM", kb, mib)
}

// TestPodmanResources: podman run --memory 256m --cpus 2 gives a guest of
// 256 MiB and 2 CPUs.
func TestPodmanResources(t *testing.T) {
	t.Parallel()
	p := newPodman(t)
	// The first container of a size boots it cold and snapshots it: with
	// 2 vCPUs under kvm-pvm, and other guests on the host's two CPUs, that
	// took over 3 minutes here.
	args := append(append([]string{}, p.base...), "run", "--runtime", kilnBinary, "--network", "none")
	args = append(append(args, podmanUlimits...), "--rm", "--memory", "256m", "--cpus", "2", podmanImage, "sh", "-c", sizeScript)
	r := runEnvDeadline(t, nil, 10*time.Minute, "", "podman", args...)
	require.Equal(t, 0, r.code, r.stderr)
	requireSize(t, r.stdout, 2, 256)
}

// TestOCIResources: a config.json's memory limit (not a MiB multiple, so
// rounded up) sizes the VM, another shape than the default with a warm
// snapshot of its own, and the swap and pids limits are warnings in
// --log, one line each.
func TestOCIResources(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	o := newOCIRuntime(t, "")
	b := writeBundle(t, rootfs, "sh", "-c", sizeScript)
	path := filepath.Join(b, "config.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var spec specs.Spec
	require.NoError(t, json.Unmarshal(data, &spec))
	limit, swap := int64(160<<20-4096), int64(320<<20)
	spec.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit, Swap: &swap},
		Pids:   &specs.LinuxPids{Limit: 100},
	}
	data, err = json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))

	logPath := filepath.Join(t.TempDir(), "log")
	cmd := o.create("r1", b)
	cmd.Args = append([]string{cmd.Args[0], "--log", logPath}, cmd.Args[1:]...)
	out, errs := "", ""
	if err := cmd.Run(); err != nil {
		out, errs = o.output("r1")
		t.Fatalf("create: %v: %s %s", err, out, errs)
	}
	pid := o.pid("r1")
	t.Cleanup(func() { o.run("delete", "--force", "r1") })
	r := o.run("update", "--memory", "512m", "r1")
	require.Equal(t, 1, r.code, "a running VM cannot change its size")
	require.Contains(t, r.stderr, "vCPUs (1)")
	r = o.run("start", "r1")
	require.Equal(t, 0, r.code, r.stderr)
	code := waitExit(t, pid)
	out, errs = o.output("r1")
	require.Equal(t, 0, code, "stdout %q stderr %q", out, errs)
	requireSize(t, out, 1, 160)

	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	t.Logf("the log:\n%s", log)
	for _, want := range []string{"memory.swap", "pids.limit"} {
		n := 0
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, want) {
				n++
				require.Contains(t, line, "level=warning")
			}
		}
		require.Equal(t, 1, n, "one line for %s", want)
	}
	require.Equal(t, 0, o.run("delete", "r1").code)
	o.requireGone("r1", pid)
}
