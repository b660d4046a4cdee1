package main

// linux.resources as the VM's size, with real guests: the guest sees the
// memory and CPUs the engine asked for (oci/resources.go), and the limits
// a VM cannot honour are warnings in the runtime's log.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
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

// TestOCIHostCgroup: with a cgroupsPath, create makes that cgroup on the
// host, writes the limits there and the VMM is in it, charged for its
// guest's memory; delete removes it. The memory limit, 256 MiB and the
// VMM's reserve, gives the default VM (its warm snapshot is the other
// tests'), and the guest sees 256 MiB.
func TestOCIHostCgroup(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	o := newOCIRuntime(t, "")
	b := writeBundle(t, rootfs, "sh", "-c", sizeScript+"; sleep 1000")
	path := filepath.Join(b, "config.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var spec specs.Spec
	require.NoError(t, json.Unmarshal(data, &spec))
	cgPath := fmt.Sprintf("kiln-test-%d", os.Getpid()) // relative: under this test's own cgroup
	limit, shares := int64(oci.Memory+oci.VMMReserve), uint64(512)
	spec.Linux.CgroupsPath = cgPath
	spec.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit},
		CPU:    &specs.LinuxCPU{Shares: &shares},
		Pids:   &specs.LinuxPids{Limit: 100},
	}
	data, err = json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))

	pid := o.createOK("g1", b)
	t.Cleanup(func() { o.run("delete", "--force", "g1") })

	// Where the VMM is, as /proc says, and what is written there, read
	// from the cgroup file system without kiln's own code.
	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	v2 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		v2 = true
	}
	dirOf := func(controller string) string {
		for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if v2 && parts[0] == "0" {
				return filepath.Join("/sys/fs/cgroup", parts[2])
			}
			for _, c := range strings.Split(parts[1], ",") {
				if !v2 && c == controller {
					require.True(t, strings.HasSuffix(parts[2], "/"+cgPath), "the VMM's %s cgroup is %s", controller, parts[2])
					return filepath.Join("/sys/fs/cgroup", parts[1], parts[2])
				}
			}
		}
		t.Fatalf("the VMM is in no %s cgroup: %s", controller, own)
		return ""
	}
	read := func(controller, v1file, v2file string) string {
		file := v1file
		if v2 {
			file = v2file
		}
		b, err := os.ReadFile(filepath.Join(dirOf(controller), file))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	require.Equal(t, strconv.FormatInt(limit, 10), read("memory", "memory.limit_in_bytes", "memory.max"))
	require.Equal(t, "100", read("pids", "pids.max", "pids.max"))
	if !v2 {
		require.Equal(t, "512", read("cpu", "cpu.shares", "cpu.weight"))
	}
	used, err := strconv.ParseInt(read("memory", "memory.usage_in_bytes", "memory.current"), 10, 64)
	require.NoError(t, err)
	require.Greater(t, used, int64(1<<20), "the guest's memory is charged to the cgroup")
	memDir := dirOf("memory")

	// kiln update writes the CPU and process limits into the cgroup, and
	// takes an unchanged memory limit as no change, as engines send it;
	// a new one it refuses: the VM's memory is fixed.
	r := o.run("update", "--cpu-share", "256", "--pids-limit", "50", "g1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "50", read("pids", "pids.max", "pids.max"))
	if !v2 {
		require.Equal(t, "256", read("cpu", "cpu.shares", "cpu.weight"))
	}
	resFile := filepath.Join(t.TempDir(), "resources.json")
	require.NoError(t, os.WriteFile(resFile, []byte(fmt.Sprintf(`{"memory":{"limit":%d},"pids":{"limit":60}}`, limit)), 0o644))
	r = o.run("update", "--resources", resFile, "g1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "60", read("pids", "pids.max", "pids.max"))
	r = o.run("update", "--memory", "512m", "g1")
	require.Equal(t, 1, r.code, "a new memory limit is refused")
	require.Contains(t, r.stderr, "memory.limit")
	require.Equal(t, strconv.FormatInt(limit, 10), read("memory", "memory.limit_in_bytes", "memory.max"), "and not written")

	r = o.run("start", "g1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Eventually(t, func() bool { out, _ := o.output("g1"); return strings.Contains(out, "MemTotal") }, bootDeadline, 100*time.Millisecond)
	out, _ := o.output("g1")
	requireSize(t, out, 1, int(oci.Memory>>20))

	r = o.run("kill", "g1", "9")
	require.Equal(t, 0, r.code, r.stderr)
	waitExit(t, pid)
	r = o.run("delete", "g1")
	require.Equal(t, 0, r.code, r.stderr)
	o.requireGone("g1", pid)
	require.NoDirExists(t, memDir, "delete removes the container's cgroup")
}
