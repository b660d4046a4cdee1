package trace

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

func TestStatsReport(t *testing.T) {
	b, _ := pioBus(t)
	s := NewStats()
	for _, c := range "hello\n" {
		e := portExit(b, 0x3f8, true, byte(c))
		e.Handling, e.Guest = 2*time.Microsecond, time.Millisecond
		s.Add(e)
	}
	e := portExit(b, 0x80, true, 0)
	e.Handling, e.Guest = time.Microsecond, time.Millisecond
	s.Add(e)
	e = portExit(b, 0x64, true, 0xfe)
	e.VCPU, e.Handling, e.Guest = 1, 5*time.Microsecond, 3*time.Second
	s.Add(e)
	s.Add(Exit{Reason: kvm.ExitHLT, Handling: 4 * time.Microsecond})

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	boot := Boot{
		Start:     start,
		FirstRun:  start.Add(20 * time.Millisecond),
		Userspace: start.Add(25 * time.Second),
		Running:   start.Add(26 * time.Second),
		End:       start.Add(27 * time.Second),
	}
	r := s.Report(boot)
	r.Failures = []Failure{{Device: "virtio-blk", Where: "mmio 0xd0000000-0xd0000fff", At: 26500 * time.Millisecond, Reason: "virtio: malformed descriptor chain: head 9 on a queue of 8"}}

	require.Equal(t, []ReasonRow{
		{kvm.ExitIO, Tally{8, 18 * time.Microsecond}},
		{kvm.ExitHLT, Tally{1, 4 * time.Microsecond}},
	}, r.Reasons, "most exits first")
	require.Equal(t, []DeviceRow{
		{"serial", "pio 0x3f8-0x3ff", Tally{6, 12 * time.Microsecond}},
		{"i8042", "pio 0x60-0x64", Tally{1, 5 * time.Microsecond}},
		{"", "pio 0x80", Tally{1, time.Microsecond}},
	}, r.Devices, "most exits first, then by address")
	require.Equal(t, []VCPURow{
		{0, Tally{8, 17 * time.Microsecond}, 7 * time.Millisecond},
		{1, Tally{1, 5 * time.Microsecond}, 3 * time.Second},
	}, r.VCPUs)

	var out strings.Builder
	_, err := r.WriteTo(&out)
	require.NoError(t, err)
	require.Equal(t, `kiln: exit statistics (time in kiln: handling the exit, from KVM_RUN returning until the device is done)

exit reason   exits  time in kiln  per exit
KVM_EXIT_IO       8       18.0 µs   2.25 µs
KVM_EXIT_HLT      1       4.00 µs   4.00 µs
all               9       22.0 µs   2.44 µs

device       where            exits  time in kiln  per exit
serial       pio 0x3f8-0x3ff      6       12.0 µs   2.00 µs
i8042        pio 0x60-0x64        1       5.00 µs   5.00 µs
(no device)  pio 0x80             1       1.00 µs   1.00 µs

vCPU  exits  in KVM_RUN  in kiln
0         8     7.00 ms  17.0 µs
1         1      3.00 s  5.00 µs

device needing a reset  where                           at  why
virtio-blk              mmio 0xd0000000-0xd0000fff  26.5 s  virtio: malformed descriptor chain: head 9 on a queue of 8

boot phase     time  from              to
VMM setup   20.0 ms  kiln start        first KVM_RUN
kernel       25.0 s  first KVM_RUN     guest user space
init         1.00 s  guest user space  command started
command      1.00 s  command started   end of the VM
total        27.0 s  kiln start        end of the VM
`, out.String())
}

func TestBootWithoutUserspace(t *testing.T) {
	start := time.Now()
	var out strings.Builder
	Report{Boot: Boot{Start: start, FirstRun: start.Add(time.Millisecond), End: start.Add(time.Second)}}.WriteTo(&out)
	require.Contains(t, out.String(), "kernel       999 ms  first KVM_RUN  end (user space never reported)")
	require.NotContains(t, out.String(), "user space  ")
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "0 ns",
		812:                      "812 ns",
		4250:                     "4.25 µs",
		31400 * time.Microsecond: "31.4 ms",
		27100 * time.Millisecond: "27.1 s",
		312 * time.Second:        "5.2 min",
	} {
		require.Equal(t, want, duration(d))
	}
}

// TestStatsBoundUnmappedRows: a guest probing 100,000 addresses where no
// device is gets maxUnmappedRows rows for the first ones and one more for
// the rest of each address space, every exit still counted.
func TestStatsBoundUnmappedRows(t *testing.T) {
	s := NewStats()
	const probes = 100000
	for i := 0; i < probes; i++ {
		s.Add(Exit{Reason: kvm.ExitMMIO, Access: &Access{Space: MMIO, Addr: 0xd0100000 + uint64(i)*8, Size: 4, Count: 1}})
	}
	s.Add(Exit{Reason: kvm.ExitIO, Access: &Access{Space: PIO, Addr: 0x80, Size: 1, Count: 1}})
	require.Equal(t, maxUnmappedRows+2, len(s.devices), "rows")
	r := s.Report(Boot{})
	total := uint64(0)
	for _, row := range r.Devices {
		total += row.Exits
	}
	require.EqualValues(t, probes+1, total)
	require.Equal(t, "mmio, other addresses", r.Devices[0].Where)
	require.EqualValues(t, probes-maxUnmappedRows, r.Devices[0].Exits)
}
