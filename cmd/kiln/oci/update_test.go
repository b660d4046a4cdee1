package oci

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/config"
)

func TestUpdateFlags(t *testing.T) {
	res := &specs.LinuxResources{}
	require.NoError(t, UpdateFlags{
		"cpu-share": "256", "cpu-quota": "-1", "cpu-period": "100000", "cpuset-cpus": "0-1",
		"pids-limit": "50", "blkio-weight": "300", "memory": "256m", "memory-reservation": "1073741824",
	}.apply(res))
	require.Equal(t, uint64(256), *res.CPU.Shares)
	require.Equal(t, int64(-1), *res.CPU.Quota)
	require.Equal(t, uint64(100000), *res.CPU.Period)
	require.Equal(t, "0-1", res.CPU.Cpus)
	require.Equal(t, int64(50), res.Pids.Limit)
	require.Equal(t, uint16(300), *res.BlockIO.Weight)
	require.Equal(t, int64(256<<20), *res.Memory.Limit)
	require.Equal(t, int64(1<<30), *res.Memory.Reservation)
	require.Equal(t, []string{"linux.resources.blockIO", "linux.resources.cpu", "linux.resources.memory", "linux.resources.pids"}, asked(res))
	require.Empty(t, asked(&specs.LinuxResources{Memory: &specs.LinuxMemory{}}), "an empty part is no change")

	for _, bad := range []UpdateFlags{{"cpu-share": "x"}, {"memory": "12q"}, {"blkio-weight": "70000"}, {"pids-limit": ""}, {"bogus": "1"}} {
		require.ErrorIs(t, bad.apply(&specs.LinuxResources{}), config.ErrUsage, "%v", bad)
	}
	require.ErrorIs(t, UpdateFlags{"l3-cache-schema": "L3:0=f"}.apply(&specs.LinuxResources{}), ErrUnsupported)
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"100": 100, "1k": 1024, "256m": 256 << 20, "2G": 2 << 30, "1MiB": 1 << 20, "3kb": 3072, "-1": -1} {
		got, err := parseBytes(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "m", "-2", "1.5g", "99999999999t"} {
		_, err := parseBytes(in)
		require.Error(t, err, in)
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	v1, v2 := t.TempDir(), t.TempDir()
	cg1 := &Cgroup{Dirs: map[string]string{"memory": v1}}
	cg2 := &Cgroup{V2: true, Dirs: map[string]string{"": v2}}
	for _, tc := range []struct {
		cg         *Cgroup
		file, data string
		want       int64
	}{
		{cg1, "memory.limit_in_bytes", "285212672\n", 285212672},
		{cg1, "memory.limit_in_bytes", "9223372036854771712\n", -1},
		{cg2, "memory.max", "max\n", -1},
		{cg2, "memory.max", "285212672\n", 285212672},
	} {
		dir, _ := tc.cg.dir("memory")
		require.NoError(t, os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.data), 0o644))
		got, err := tc.cg.memoryLimit()
		require.NoError(t, err)
		require.Equal(t, tc.want, got, tc.data)
	}
	_, err := (&Cgroup{Dirs: map[string]string{"cpu": v1}}).memoryLimit()
	require.Error(t, err, "no memory controller")
}
