package oci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

// A hybrid host's mountinfo (this project's machines): v1 hierarchies,
// systemd's named one, and the unified mount beside them.
const hybridMountinfo = `24 30 0:22 / /sys rw,nosuid - sysfs sysfs rw
35 24 0:31 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
36 35 0:32 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
37 35 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
38 35 0:34 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 35 0:35 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 35 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
41 35 0:37 /inner /sys/fs/cgroup/pids\040x rw,relatime - cgroup cgroup rw,pids
`

const hybridOwn = `9:name=systemd:/
5:cpu,cpuacct:/
4:memory:/process_api/abc
3:cpu:/
2:pids:/inner/me
0::/
`

func TestResolveCgroup(t *testing.T) {
	mounts := parseCgroupMounts(hybridMountinfo)
	require.Len(t, mounts, 5, "the v1 controller hierarchies and the unified mount; not systemd's")
	own := parseOwnCgroups(hybridOwn)
	require.Equal(t, map[string]string{"cpu": "/", "cpu,cpuacct": "/", "memory": "/process_api/abc", "pids": "/inner/me", "": "/"}, own)

	cg, err := resolveCgroup("/cgrouptest", mounts, own)
	require.NoError(t, err)
	require.False(t, cg.V2, "a hybrid host is v1, as runc takes it")
	require.Equal(t, map[string]string{
		"cpu":         "/sys/fs/cgroup/cpu/cgrouptest",
		"cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/cgrouptest",
		"memory":      "/sys/fs/cgroup/memory/cgrouptest",
		"pids":        "/sys/fs/cgroup/pids x/cgrouptest",
	}, cg.Dirs, "an absolute path is from each hierarchy's root")

	cg, err = resolveCgroup("testdir/cgrouptest/container", mounts, own)
	require.NoError(t, err)
	require.Equal(t, "/sys/fs/cgroup/memory/process_api/abc/testdir/cgrouptest/container", cg.Dirs["memory"], "a relative path is from kiln's own cgroup")
	require.Equal(t, "/sys/fs/cgroup/pids x/me/testdir/cgrouptest/container", cg.Dirs["pids"], "seen from the mount's root")
	d, ok := cg.dir("cpuacct")
	require.True(t, ok)
	require.Equal(t, "/sys/fs/cgroup/cpu,cpuacct/testdir/cgrouptest/container", d)
	_, ok = cg.dir("blkio")
	require.False(t, ok)

	cg, err = resolveCgroup("../../etc", mounts, own)
	require.NoError(t, err)
	require.Equal(t, "/sys/fs/cgroup/memory/process_api/abc/etc", cg.Dirs["memory"], "never above the hierarchy")

	_, err = resolveCgroup("/", mounts, own)
	require.ErrorIs(t, err, ErrBadBundle)

	v2 := parseCgroupMounts("30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
	cg, err = resolveCgroup("/machine.slice/libpod-c1.scope", v2, map[string]string{"": "/user.slice"})
	require.NoError(t, err)
	require.True(t, cg.V2)
	require.Equal(t, map[string]string{"": "/sys/fs/cgroup/machine.slice/libpod-c1.scope"}, cg.Dirs)
	cg, err = resolveCgroup("libpod-c1", v2, map[string]string{"": "/user.slice"})
	require.NoError(t, err)
	require.Equal(t, "/sys/fs/cgroup/user.slice/libpod-c1", cg.Dirs[""])

	_, err = resolveCgroup("/x", nil, own)
	require.Error(t, err)
}

func TestSystemdCgroupPath(t *testing.T) {
	for in, want := range map[string]string{
		"machine.slice:libpod:c1":       "/machine.slice/libpod-c1.scope",
		"user-1000.slice:crio:c2":       "/user.slice/user-1000.slice/crio-c2.scope",
		":runc:c3":                      "/system.slice/runc-c3.scope",
		"-.slice::c4":                   "/c4.scope",
		"machine.slice:libpod:c5.scope": "/machine.slice/libpod-c5.scope",
	} {
		got, err := SystemdCgroupPath(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"/machine.slice/x", "machine:libpod:c1", "a--b.slice:p:n", "machine.slice:p:", "machine.slice:p:../x"} {
		_, err := SystemdCgroupPath(bad)
		require.ErrorIs(t, err, ErrBadBundle, bad)
	}
}

// fakeCgroup makes a cgroup directory holding the named files, empty.
func fakeCgroup(t *testing.T, dir string, files ...string) {
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, f := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
}

func readCgroupFile(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

// TestCgroupMake: the directories are made with their parents, a new v1
// cpuset directory gets its parent's CPUs and memory nodes (a real cgroup
// file system makes its files, empty; here they are made beforehand), and
// Remove takes the leaf only.
func TestCgroupMake(t *testing.T) {
	root := t.TempDir()
	leaf := filepath.Join(root, "memory", "a", "b")
	fakeCgroup(t, filepath.Join(root, "memory"))
	cg := &Cgroup{Dirs: map[string]string{"memory": leaf}}
	require.NoError(t, cg.Make())
	require.DirExists(t, leaf)
	require.NoError(t, cg.Remove())
	require.NoDirExists(t, leaf)
	require.DirExists(t, filepath.Dir(leaf), "a parent other containers may share stays")
	require.NoError(t, cg.Remove(), "gone already is no error")

	parent := filepath.Join(root, "cpuset")
	fakeCgroup(t, parent, "cpuset.cpus", "cpuset.mems")
	require.NoError(t, os.WriteFile(filepath.Join(parent, "cpuset.cpus"), []byte("0-1\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(parent, "cpuset.mems"), []byte("0\n"), 0o644))
	child := filepath.Join(parent, "c1")
	fakeCgroup(t, child, "cpuset.cpus", "cpuset.mems")
	require.NoError(t, inheritCpuset(child))
	require.Equal(t, "0-1\n", readCgroupFile(t, filepath.Join(child, "cpuset.cpus")))
	require.Equal(t, "0\n", readCgroupFile(t, filepath.Join(child, "cpuset.mems")))
}

func TestCgroupLimitsV1(t *testing.T) {
	root := t.TempDir()
	dirs := map[string]string{}
	files := map[string][]string{
		"memory":      {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes", "memory.swappiness", "memory.oom_control"},
		"cpu,cpuacct": {"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"},
		"cpuset":      {"cpuset.cpus", "cpuset.mems"},
		"pids":        {"pids.max"},
		"devices":     {"devices.allow", "devices.deny"},
	}
	for key, fs := range files {
		dirs[key] = filepath.Join(root, key, "c1")
		fakeCgroup(t, dirs[key], fs...)
	}
	cg := &Cgroup{Dirs: dirs}
	major, minor := int64(10), int64(229)
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20), Reservation: i64(128 << 20), Kernel: i64(64 << 20), KernelTCP: i64(1 << 20), Swappiness: u64(10), DisableOOMKiller: func() *bool { b := true; return &b }()},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(150000), Period: u64(100000), Cpus: "0", Mems: "0"},
		Pids:   &specs.LinuxPids{Limit: 2048},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"},
			{Allow: true, Type: "c", Major: &major, Access: "r"},
		},
	}
	notes, err := cg.ApplyLimits(res)
	require.NoError(t, err)
	for file, want := range map[string]string{
		"memory/c1/memory.limit_in_bytes":       "268435456",
		"memory/c1/memory.memsw.limit_in_bytes": "536870912",
		"memory/c1/memory.soft_limit_in_bytes":  "134217728",
		"memory/c1/memory.swappiness":           "10",
		"memory/c1/memory.oom_control":          "1",
		"cpu,cpuacct/c1/cpu.shares":             "512",
		"cpu,cpuacct/c1/cpu.cfs_period_us":      "100000",
		"cpu,cpuacct/c1/cpu.cfs_quota_us":       "150000",
		"cpuset/c1/cpuset.cpus":                 "0",
		"pids/c1/pids.max":                      "2048",
		"devices/c1/devices.allow":              "c 10:* r", // the last rule written
	} {
		require.Equal(t, want, readCgroupFile(t, filepath.Join(root, file)), file)
	}
	require.Empty(t, notes, "a file keeps what was written: no kernel ignored it")

	// A knob the host lacks fails, naming the limit and the file.
	_, err = cg.ApplyLimits(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: func() *uint16 { w := uint16(300); return &w }()}})
	require.ErrorContains(t, err, "linux.resources.blockIO.leafWeight: the host has no blkio cgroup controller mounted")
	_, err = cg.ApplyLimits(&specs.LinuxResources{CPU: &specs.LinuxCPU{Burst: u64(1)}})
	require.ErrorContains(t, err, "linux.resources.cpu.burst: the host's cgroup has no cpu.cfs_burst_us")
	_, err = cg.ApplyLimits(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}})
	require.ErrorIs(t, err, ErrUnsupported)
}

func TestDeviceRule(t *testing.T) {
	m, n := int64(8), int64(20)
	require.Equal(t, "a", deviceRule(specs.LinuxDeviceCgroup{Access: "rwm"}))
	require.Equal(t, "b 8:20 rw", deviceRule(specs.LinuxDeviceCgroup{Type: "b", Major: &m, Minor: &n, Access: "rw"}))
	require.Equal(t, "c *:* rwm", deviceRule(specs.LinuxDeviceCgroup{Type: "c"}))
}

func TestCgroupLimitsV2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c1")
	fakeCgroup(t, dir, "memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "cpuset.cpus", "pids.max", "io.weight", "memory.high")
	cg := &Cgroup{V2: true, Dirs: map[string]string{"": dir}}
	res := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20), Reservation: i64(128 << 20), Swappiness: u64(10)},
		CPU:     &specs.LinuxCPU{Shares: u64(1024), Quota: i64(200000), Cpus: "0-1"},
		Pids:    &specs.LinuxPids{Limit: -1},
		BlockIO: &specs.LinuxBlockIO{Weight: func() *uint16 { w := uint16(500); return &w }()},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		Unified: map[string]string{"memory.high": "300000000"},
	}
	notes, err := cg.ApplyLimits(res)
	require.NoError(t, err)
	for file, want := range map[string]string{
		"memory.max":      "268435456",
		"memory.swap.max": "268435456", // v2's swap is swap alone
		"memory.low":      "134217728",
		"cpu.weight":      "39", // 1024 shares, as runc maps them
		"cpu.max":         "200000 100000",
		"cpuset.cpus":     "0-1",
		"pids.max":        "max",
		"io.weight":       "default 4950",
		"memory.high":     "300000000",
	} {
		require.Equal(t, want, readCgroupFile(t, filepath.Join(dir, file)), file)
	}
	all := strings.Join(notes, "\n")
	require.Contains(t, all, "swappiness")
	require.Contains(t, all, "devices")

	_, err = cg.ApplyLimits(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(128 << 20)}})
	require.ErrorIs(t, err, ErrBadBundle, "swap below the limit")
	_, err = cg.ApplyLimits(&specs.LinuxResources{Unified: map[string]string{"../x": "1"}})
	require.ErrorIs(t, err, ErrBadBundle)
}

func TestCgroupShareConversions(t *testing.T) {
	require.Equal(t, uint64(1), sharesToWeight(2))
	require.Equal(t, uint64(10000), sharesToWeight(262144))
	require.Equal(t, uint64(1), blkioToIOWeight(10))
	require.Equal(t, uint64(10000), blkioToIOWeight(1000))
}
