package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestSummarize(t *testing.T) {
	require.Equal(t, Summary{}, Summarize(nil))

	s := Summarize(ms(30, 10, 20))
	require.Equal(t, Summary{N: 3, Min: 10 * time.Millisecond, Median: 20 * time.Millisecond, P90: 30 * time.Millisecond, Max: 30 * time.Millisecond}, s)

	// An even count: the median is the mean of the middle two.
	s = Summarize(ms(4, 1, 3, 2))
	require.Equal(t, 2500*time.Microsecond, s.Median)

	// p90 by nearest rank: of 1..20 it is the 18th value, of 1..10 the 9th.
	var twenty []int
	for i := 1; i <= 20; i++ {
		twenty = append(twenty, i)
	}
	require.Equal(t, 18*time.Millisecond, Summarize(ms(twenty...)).P90)
	require.Equal(t, 9*time.Millisecond, Summarize(ms(twenty[:10]...)).P90)
	require.Equal(t, 7*time.Millisecond, Summarize(ms(7)).P90)

	// The input is not reordered.
	in := ms(3, 1, 2)
	Summarize(in)
	require.Equal(t, ms(3, 1, 2), in)
}

func TestMedianKiB(t *testing.T) {
	require.Zero(t, MedianKiB(nil))
	require.EqualValues(t, 5, MedianKiB([]uint64{9, 5, 1}))
	require.EqualValues(t, 4, MedianKiB([]uint64{2, 6, 1, 9}))
}

func TestMethodCountsOnlyMeasuredSamples(t *testing.T) {
	m := Method{Name: "kiln", Kind: "vm", Samples: []Sample{
		{Round: 1, Warmup: true, Userspace: time.Second, Exit: 2 * time.Second, Memory: &Memory{Overhead: 100}},
		{Round: 2, Userspace: 3 * time.Second, Exit: 4 * time.Second, Memory: &Memory{Overhead: 200}},
		{Round: 3, Err: "boom", Userspace: 9 * time.Second, Exit: 9 * time.Second, Memory: &Memory{Overhead: 900}},
		{Round: 4, Exit: 5 * time.Second},
	}}
	require.Equal(t, []time.Duration{3 * time.Second}, m.Durations(ToUserspace))
	require.Equal(t, []time.Duration{4 * time.Second, 5 * time.Second}, m.Durations(ToExit))
	require.Equal(t, []uint64{200}, m.MemoryKiB(func(x Memory) uint64 { return x.Overhead }))
	require.Equal(t, []string{"boom"}, m.Failures())
}

func TestSchedule(t *testing.T) {
	s := Schedule(3, 1, 2)
	require.Len(t, s, 9)
	var order []int
	for _, x := range s {
		order = append(order, x.Method)
	}
	require.Equal(t, []int{0, 1, 2, 0, 1, 2, 0, 1, 2}, order, "A B C A B C ...")
	for i, x := range s {
		require.Equal(t, i/3+1, x.Round)
		require.Equal(t, x.Round == 1, x.Warmup)
	}
	require.Empty(t, Schedule(0, 1, 5))
	require.Len(t, Schedule(2, 0, 1), 2)
}

func TestFormatDurationAndSize(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Nanosecond:   "1.50 µs",
		2090 * time.Microsecond:  "2.09 ms",
		16600 * time.Microsecond: "16.6 ms",
		22581 * time.Millisecond: "22.6 s",
		90 * time.Second:         "1.5 min",
		999 * time.Nanosecond:    "999 ns",
	} {
		require.Equal(t, want, FormatDuration(d))
	}
	require.Equal(t, "512 KiB", FormatKiB(512))
	require.Equal(t, "3.20 MiB", FormatKiB(3277))
	require.Equal(t, "128 MiB", FormatKiB(128<<10))
}
