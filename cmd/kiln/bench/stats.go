package bench

import (
	"slices"
	"time"
)

// Summary is the distribution of one measure over a method's samples.
type Summary struct {
	N      int           `json:"n"`
	Min    time.Duration `json:"min_ns"`
	Median time.Duration `json:"median_ns"`
	P90    time.Duration `json:"p90_ns"`
	Max    time.Duration `json:"max_ns"`
}

// Summarize returns min, median, 90th percentile and max of d. The median of
// an even count is the mean of the two middle values; the percentile is the
// nearest rank (the smallest value with at least 90% of the samples at or
// below it), so with few samples p90 is the maximum, never an invented
// value between samples.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{N: n, Min: s[0], Median: med, P90: s[nearestRank(n, 90)], Max: s[n-1]}
}

// nearestRank is the index of the p-th percentile of n sorted values.
func nearestRank(n, p int) int {
	r := (p*n + 99) / 100 // ceil(p*n/100), 1-based
	if r < 1 {
		r = 1
	}
	return r - 1
}

// MedianKiB is the median of sizes in KiB (0 for none).
func MedianKiB(v []uint64) uint64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

// Measure picks one duration out of a sample.
type Measure struct {
	Name string
	Get  func(Sample) time.Duration
}

// The two start-up measures every row reports.
var (
	ToUserspace = Measure{"launch → user space", func(s Sample) time.Duration { return s.Userspace }}
	ToExit      = Measure{"launch → exit", func(s Sample) time.Duration { return s.Exit }}
)

// The HTTP workload's start-up measures.
var (
	ToReady     = Measure{"launch → ready (own)", func(s Sample) time.Duration { return s.Ready }}
	ToFirstHTTP = Measure{"launch → first 200", func(s Sample) time.Duration { return s.FirstHTTP }}
)

// Durations returns the measure over the method's counted samples: not
// warm-up, not failed, and measured (non-zero).
func (m Method) Durations(ms Measure) []time.Duration {
	var out []time.Duration
	for _, s := range m.Samples {
		if s.Warmup || !s.OK() {
			continue
		}
		if v := ms.Get(s); v > 0 {
			out = append(out, v)
		}
	}
	return out
}

// Summary summarizes one measure of the method.
func (m Method) Summary(ms Measure) Summary { return Summarize(m.Durations(ms)) }

// MemoryKiB returns one memory figure over the counted samples that have it.
func (m Method) MemoryKiB(get func(Memory) uint64) []uint64 {
	var out []uint64
	for _, s := range m.Samples {
		if s.Warmup || !s.OK() || s.Memory == nil {
			continue
		}
		if v := get(*s.Memory); v > 0 {
			out = append(out, v)
		}
	}
	return out
}

// Failures returns the errors of the method's failed samples.
func (m Method) Failures() []string {
	var out []string
	for _, s := range m.Samples {
		if !s.OK() {
			out = append(out, s.Err)
		}
	}
	return out
}

// Find returns the method called name, or nil.
func (r *Results) Find(name string) *Method {
	for i := range r.Methods {
		if r.Methods[i].Name == name {
			return &r.Methods[i]
		}
	}
	return nil
}
