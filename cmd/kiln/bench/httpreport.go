package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// writeHTTPReport prints the HTTP workload's results: per method the
// medians of launch → ready and launch → first 200 (with min and max),
// the burst's latency and rate, the instance's memory and teardown; then
// the unavailable methods, failures and the density runs.
func writeHTTPReport(w io.Writer, r *Results) {
	b := r.Settings.Burst
	fmt.Fprintf(w, "kiln bench --workload http: %d rounds after %d warm-up, service `%s` on :%d, %d MiB guests\n",
		r.Settings.Rounds, r.Settings.Warmup, strings.Join(r.Settings.Command, " "), servicePort, r.Settings.MemoryMB)
	if b != nil {
		ka := "keep-alive on: each connection carries many requests"
		if !b.KeepAlive {
			ka = "keep-alive off: a new connection per request"
		}
		fmt.Fprintf(w, "burst: %d GETs of / from the host, %d connections at once, %s; at most %s\n",
			b.Requests, b.Conns, ka, FormatDuration(b.Deadline))
	}
	fmt.Fprintf(w, "host: %s, %d CPUs, Linux %s; KVM: %s\n", r.Host.CPU, r.Host.CPUs, r.Host.Kernel, r.Host.KVM)
	if r.Host.PVM {
		fmt.Fprintln(w, "note: software-nested KVM: guest kernels run far slower than on hardware; compare VMMs with each other, not with these absolute times")
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "method\tn\tready (own)\tfirst 200: min\tmedian\tmax\tp50\tp99\treq/s\tteardown\t  memory (median)\n")
	for _, m := range r.Methods {
		if m.Unavailable != "" {
			continue
		}
		ready := m.Summary(ToReady)
		first := m.Summary(ToFirstHTTP)
		p50, p99, rps := burstMedians(m)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t  %s\n", m.Name, first.N,
			durOrDash(ready.Median), durOrDash(first.Min), durOrDash(first.Median), durOrDash(first.Max),
			durOrDash(p50), durOrDash(p99), rateOrDash(rps), durOrDash(medianTeardown(m)), httpMemoryCell(m))
	}
	tw.Flush()

	for _, m := range r.Methods {
		if m.Unavailable != "" {
			fmt.Fprintf(w, "%s: unavailable: %s\n", m.Name, m.Unavailable)
			continue
		}
		if f := m.Failures(); len(f) > 0 {
			fmt.Fprintf(w, "%s: %d of %d starts failed; first: %s\n", m.Name, len(f), len(m.Samples), f[0])
		}
		for _, s := range m.Samples {
			if s.TeardownErr != "" {
				fmt.Fprintf(w, "%s: teardown of round %d: %s\n", m.Name, s.Round, s.TeardownErr)
			}
			if br := s.Burst; br != nil && (br.Errors > 0 || br.Cut) {
				fmt.Fprintf(w, "%s: burst of round %d: %s\n", m.Name, s.Round, burstCell(br))
			}
		}
	}

	if len(r.Density) > 0 {
		fmt.Fprintln(w, "\ndensity (instances serving at once):")
		for _, d := range r.Density {
			fmt.Fprintf(w, "  %s\n", describeDensity(d))
		}
	}
	writeGoals(w, r.Goals)
}

// burstMedians are the medians over a method's counted bursts.
func burstMedians(m Method) (p50, p99 time.Duration, rps float64) {
	var a, b []time.Duration
	var r []float64
	for _, s := range m.Samples {
		if s.Warmup || !s.OK() || s.Burst == nil || s.Burst.Requests == 0 {
			continue
		}
		a = append(a, s.Burst.P50)
		b = append(b, s.Burst.P99)
		r = append(r, s.Burst.RPS)
	}
	if len(r) == 0 {
		return 0, 0, 0
	}
	slices.Sort(r)
	rps = r[len(r)/2]
	if len(r)%2 == 0 {
		rps = (r[len(r)/2-1] + r[len(r)/2]) / 2
	}
	return Summarize(a).Median, Summarize(b).Median, rps
}

func medianTeardown(m Method) time.Duration {
	var d []time.Duration
	for _, s := range m.Samples {
		if !s.Warmup && s.OK() && s.Teardown > 0 {
			d = append(d, s.Teardown)
		}
	}
	return Summarize(d).Median
}

// httpMemoryCell is a method's median instance memory.
func httpMemoryCell(m Method) string {
	pss := m.MemoryKiB(func(x Memory) uint64 { return x.PSS })
	if len(pss) == 0 {
		return "-"
	}
	rss := m.MemoryKiB(func(x Memory) uint64 { return x.RSS })
	procs := m.MemoryKiB(func(x Memory) uint64 { return uint64(x.Processes) })
	s := fmt.Sprintf("PSS %s, RSS %s, %d processes", FormatKiB(MedianKiB(pss)), FormatKiB(MedianKiB(rss)), MedianKiB(procs))
	if ov := m.MemoryKiB(func(x Memory) uint64 { return x.Overhead }); len(ov) > 0 {
		guest := m.MemoryKiB(func(x Memory) uint64 { return x.Guest })
		s += fmt.Sprintf("; VMM overhead %s, guest touched %s", FormatKiB(MedianKiB(ov)), FormatKiB(MedianKiB(guest)))
	}
	return s
}

func durOrDash(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return FormatDuration(d)
}

func rateOrDash(r float64) string {
	if r <= 0 {
		return "-"
	}
	if r < 10 {
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.0f", r)
}
