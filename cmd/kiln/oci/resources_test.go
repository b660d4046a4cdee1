package oci

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/config"
)

func i64(v int64) *int64                 { return &v }
func u64(v uint64) *uint64               { return &v }
func mem(limit int64) *specs.LinuxMemory { return &specs.LinuxMemory{Limit: i64(limit)} }

func TestSizeOf(t *testing.T) {
	host := Host{CPUs: 4, Memory: 8 << 30}
	const MiB = 1 << 20
	for _, c := range []struct {
		name  string
		res   *specs.LinuxResources
		want  Size
		notes []string // each a part of one note, in order
	}{
		{"no resources", nil, DefaultSize, nil},
		{"empty", &specs.LinuxResources{}, DefaultSize, nil},
		{"podman --memory 256m --cpus 2",
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(256 * MiB), Swap: i64(512 * MiB)}, CPU: &specs.LinuxCPU{Quota: i64(200000), Period: u64(100000)}},
			Size{CPUs: 2, Memory: 256 * MiB}, []string{"memory.swap"}},
		{"a limit rounds up to a MiB", &specs.LinuxResources{Memory: mem(100*MiB + 1)}, Size{CPUs: CPUs, Memory: 101 * MiB}, nil},
		{"a small limit gets the floor", &specs.LinuxResources{Memory: mem(6 * MiB)}, Size{CPUs: CPUs, Memory: MinMemory}, []string{"below what the guest needs"}},
		{"no limit (-1)", &specs.LinuxResources{Memory: mem(-1)}, DefaultSize, nil},
		{"more than the host has", &specs.LinuxResources{Memory: mem(64 << 30)}, Size{CPUs: CPUs, Memory: 8 << 30}, []string{"more than the host has"}},
		{"a fractional quota rounds up", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(150000), Period: u64(100000)}}, Size{CPUs: 2, Memory: Memory}, []string{"1.5 CPUs of time become 2 vCPUs"}},
		{"a quota without a period", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(300000)}}, Size{CPUs: 3, Memory: Memory}, nil},
		{"an unlimited quota", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1), Period: u64(100000)}}, DefaultSize, nil},
		{"a cpuset", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-1,3"}}, Size{CPUs: 3, Memory: Memory}, []string{`"0-1,3" gives the VM 3 vCPUs`}},
		{"a cpuset and a smaller quota", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-3", Quota: i64(100000), Period: u64(100000)}}, Size{CPUs: 1, Memory: Memory}, []string{"cpu.cpus"}},
		{"more CPUs than the host", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(800000), Period: u64(100000)}}, Size{CPUs: 4, Memory: Memory}, []string{"8 CPUs asked, the host has 4"}},
		{"limits a VM cannot honour",
			&specs.LinuxResources{
				Memory:         &specs.LinuxMemory{Reservation: i64(MiB), Kernel: i64(MiB), Swappiness: u64(10)},
				CPU:            &specs.LinuxCPU{Shares: u64(512), RealtimeRuntime: i64(1), Mems: "0"},
				Pids:           &specs.LinuxPids{Limit: 2048},
				BlockIO:        &specs.LinuxBlockIO{Weight: func() *uint16 { w := uint16(500); return &w }()},
				HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}},
				Devices:        []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Network:        &specs.LinuxNetwork{ClassID: func() *uint32 { v := uint32(1); return &v }()},
				Unified:        map[string]string{"memory.high": "1"},
			},
			DefaultSize,
			[]string{"memory.reservation", "memory.kernel", "swappiness", "cpu.shares", "realtimeRuntime", "cpu.mems", "devices", "pids.limit", "blockIO", "hugepageLimits", "network", "unified (memory.high)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			size, notes, err := SizeOf(c.res, host, false)
			require.NoError(t, err)
			require.Equal(t, c.want, size)
			require.Len(t, notes, len(c.notes), "notes: %q", notes)
			for i, want := range c.notes {
				require.Contains(t, notes[i], want)
				require.NotContains(t, notes[i], "\n", "one line each")
			}
			// A size the VM's config accepts.
			require.True(t, size.CPUs >= 1 && size.CPUs <= config.MaxCPUs, size.CPUs)
			require.True(t, size.Memory >= config.MinMemory && size.Memory%(4<<10) == 0, size.Memory)
		})
	}
}

func TestSizeOfRefusesABadCpuset(t *testing.T) {
	for _, set := range []string{"x", "3-1", "0-", "-1", "0-100000000"} {
		_, _, err := SizeOf(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: set}}, Host{CPUs: 2}, false)
		require.ErrorIs(t, err, ErrBadBundle, set)
		require.True(t, strings.Contains(err.Error(), "cpu.cpus"), err.Error())
	}
}

// TestSizesAreShapes: the VM's size is in the warm snapshot's shape, so
// another size has another snapshot.
func TestSizesAreShapes(t *testing.T) {
	a := ShapeOf("/k", "/i", DefaultSize, nil, "/v")
	b := ShapeOf("/k", "/i", Size{CPUs: 2, Memory: 256 << 20}, nil, "/v")
	require.NotEqual(t, a, b)
	require.Equal(t, 2, b.CPUs)
	require.Equal(t, uint64(256<<20), b.Memory)
	require.Equal(t, DefaultSize, (&Plan{}).VMSize(), "a plan without a size")
}
