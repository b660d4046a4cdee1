package bench

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// smapsSample is a cut-down /proc/PID/smaps of a VMM with 128 MiB of guest
// RAM (the anonymous 131072 kB mapping), its binary and its heap.
const smapsSample = `00400000-00800000 r-xp 00000000 08:01 1234                       /usr/bin/kiln
Size:               4096 kB
KernelPageSize:        4 kB
Rss:                2048 kB
Pss:                1024 kB
Shared_Clean:       2048 kB
VmFlags: rd ex mr mw me dw
7f0000000000-7f0008000000 rw-p 00000000 00:00 0 
Size:             131072 kB
Rss:               61440 kB
Pss:               61440 kB
VmFlags: rd wr mr mw me ac
7f0010000000-7f0010100000 rw-p 00000000 00:00 0                          [heap]
Size:               1024 kB
Rss:                 900 kB
Pss:                 900 kB
7f0020000000-7f0020040000 rw-p 00000000 00:00 0 
Size:                256 kB
Rss:                 100 kB
Pss:                 100 kB
`

func TestParseSmapsAndSplitGuestRAM(t *testing.T) {
	maps, err := parseSmaps(strings.NewReader(smapsSample))
	require.NoError(t, err)
	require.Len(t, maps, 4)
	require.Equal(t, "/usr/bin/kiln", maps[0].name)
	require.Equal(t, "", maps[1].name)
	require.Equal(t, "[heap]", maps[2].name)
	require.EqualValues(t, 131072, maps[1].size)

	m, err := vmmMemory(maps, 128<<10)
	require.NoError(t, err)
	require.EqualValues(t, 2048+61440+900+100, m.RSS)
	require.EqualValues(t, 1024+61440+900+100, m.PSS)
	require.EqualValues(t, 61440, m.Guest)
	require.EqualValues(t, 2048+900+100, m.Overhead)

	// QEMU maps a little more than the guest size, for alignment.
	maps[1].size += 2048
	m, err = vmmMemory(maps, 128<<10)
	require.NoError(t, err)
	require.EqualValues(t, 61440, m.Guest)

	// No mapping the size of guest memory: an error, not a wrong number.
	_, err = vmmMemory(maps, 512<<10)
	require.ErrorContains(t, err, "512 MiB")
}

func TestParseSmapsRejectsGarbage(t *testing.T) {
	_, err := parseSmaps(strings.NewReader("00400000-00800000 r-xp 0 0 0\nRss: lots kB\n"))
	require.Error(t, err)
	maps, err := parseSmaps(strings.NewReader("not smaps at all\n"))
	require.NoError(t, err)
	require.Empty(t, maps)
}

func TestReadVMMMemoryOfThisProcess(t *testing.T) {
	// This test binary has no guest RAM mapping: the error names the size.
	_, err := readVMMMemory(os.Getpid(), 1<<30)
	require.ErrorContains(t, err, "guest RAM")
}

func TestStatusKiB(t *testing.T) {
	st := []byte("Name:\tcrun\nVmPeak:\t  9000 kB\nVmHWM:\t    3276 kB\nVmRSS:\t 3000 kB\n")
	v, ok := statusKiB(st, "VmHWM:")
	require.True(t, ok)
	require.EqualValues(t, 3276, v)
	_, ok = statusKiB([]byte("Name:\tzombie\nState:\tZ\n"), "VmHWM:")
	require.False(t, ok)
}

func TestSteadyMemory(t *testing.T) {
	ov := func(kib uint64, running bool) memSample {
		return memSample{Memory{RSS: kib + 1000, Guest: 1000, Overhead: kib}, running}
	}
	require.Nil(t, steadyMemory(nil))
	// No running event (QEMU): the last sample.
	require.EqualValues(t, 7000, steadyMemory([]memSample{ov(9000, false), ov(7000, false)}).Overhead)
	// Start-up's samples are left out; of the running ones, the median,
	// so that neither the sample before the trim nor the teardown's
	// last one decides.
	got := steadyMemory([]memSample{ov(9800, false), ov(9800, true), ov(3100, true), ov(3100, true), ov(3200, true), ov(5400, true)})
	require.EqualValues(t, 3200, got.Overhead)
	require.EqualValues(t, 4200, got.RSS)
	// An even count takes the lower middle sample, a sample as measured.
	require.EqualValues(t, 3100, steadyMemory([]memSample{ov(3100, true), ov(5400, true)}).Overhead)
}
