package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// WriteReport prints the results as tables: one row per method and
// measure with min, median, p90 and max, the memory, the unavailable
// methods and why, kiln's boot breakdown, the density runs and the goals.
func WriteReport(w io.Writer, r *Results) {
	if r.Settings.Workload == "http" {
		writeHTTPReport(w, r)
		return
	}
	fmt.Fprintf(w, "kiln bench: %d rounds after %d warm-up, workload `%s`, %d MiB guests\n",
		r.Settings.Rounds, r.Settings.Warmup, strings.Join(r.Settings.Command, " "), r.Settings.MemoryMB)
	fmt.Fprintf(w, "host: %s, %d CPUs, Linux %s; KVM: %s\n", r.Host.CPU, r.Host.CPUs, r.Host.Kernel, r.Host.KVM)
	if r.Host.PVM {
		fmt.Fprintln(w, "note: software-nested KVM: guest kernels run far slower than on hardware; compare VMMs with each other, not with these absolute times")
	}
	fmt.Fprintln(w)

	// Numbers align right; the names are padded so they still read left.
	nameW, measureW := len("method"), utf8.RuneCountInString(ToUserspace.Name)
	for _, m := range r.Methods {
		nameW = max(nameW, len(m.Name))
	}
	left := func(s string, w int) string { return s + strings.Repeat(" ", max(0, w-utf8.RuneCountInString(s))) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\t%s\tn\tmin\tmedian\tp90\tmax\t  %s\n", left("method", nameW), left("measure", measureW), "memory (median)")
	for _, m := range r.Methods {
		if m.Unavailable != "" {
			continue
		}
		measures := []Measure{ToExit}
		if m.Kind == "vm" {
			measures = []Measure{ToUserspace, ToExit}
		}
		for i, ms := range measures {
			s := m.Summary(ms)
			mem := ""
			if i == 0 {
				mem = memoryCell(m)
			}
			if s.N == 0 {
				fmt.Fprintf(tw, "%s\t%s\t0\t-\t-\t-\t-\t  %s\n", left(m.Name, nameW), left(ms.Name, measureW), mem)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t  %s\n", left(m.Name, nameW), left(ms.Name, measureW), s.N,
				FormatDuration(s.Min), FormatDuration(s.Median), FormatDuration(s.P90), FormatDuration(s.Max), mem)
		}
	}
	tw.Flush()

	for _, m := range r.Methods {
		if m.Unavailable != "" {
			fmt.Fprintf(w, "%s: unavailable: %s\n", m.Name, m.Unavailable)
		} else if f := m.Failures(); len(f) > 0 {
			fmt.Fprintf(w, "%s: %d of %d starts failed; first: %s\n", m.Name, len(f), len(m.Samples), f[0])
		}
	}

	if p, n := medianPhases(r.Find("kiln")); n > 0 {
		fmt.Fprintf(w, "\nkiln boot breakdown (medians of %d): VMM setup %s, kernel %s (first KVM_RUN → init), user space %s (init, the workload, reset)\n",
			n, FormatDuration(p.VMMSetup), FormatDuration(p.Kernel), FormatDuration(p.UserSpace))
	}

	for _, m := range r.Methods {
		if steps, n := medianSteps(&m); n > 0 {
			parts := make([]string, len(steps))
			for i, s := range steps {
				parts[i] = s.Name + " " + FormatDuration(s.Took)
			}
			fmt.Fprintf(w, "\n%s launch → exit, where it goes (medians of %d; cmd/kiln/oci/phases.go): %s\n", m.Name, n, strings.Join(parts, ", "))
		}
	}

	if len(r.Density) > 0 {
		fmt.Fprintln(w, "\ndensity (kiln VMs started at once):")
		for _, d := range r.Density {
			fmt.Fprintf(w, "  %s\n", describeDensity(d))
		}
	}

	writeGoals(w, r.Goals)
}

// writeGoals prints the goals, met or not, with what was measured.
func writeGoals(w io.Writer, goals []Goal) {
	if len(goals) > 0 {
		fmt.Fprintln(w, "\ngoals:")
		for _, g := range goals {
			fmt.Fprintf(w, "  [%s] %s: %s\n", goalState(g), g.Name, g.Target)
			if g.Value != "" {
				fmt.Fprintf(w, "         measured: %s\n", g.Value)
			}
			if g.Note != "" {
				fmt.Fprintf(w, "         %s\n", g.Note)
			}
		}
	}
}

func goalState(g Goal) string {
	switch {
	case !g.Known:
		return "unknown"
	case strings.HasPrefix(g.Target, "reported"):
		return "info"
	case g.Met:
		return "met"
	}
	return "MISSED"
}

// memoryCell is a method's median memory: the VMM overhead for VMs, the
// peak RSS for the rest.
func memoryCell(m Method) string {
	if m.Kind == "vm" {
		ov := m.MemoryKiB(func(x Memory) uint64 { return x.Overhead })
		if len(ov) == 0 {
			return "-"
		}
		pss := m.MemoryKiB(func(x Memory) uint64 { return x.PSS })
		guest := m.MemoryKiB(func(x Memory) uint64 { return x.Guest })
		return fmt.Sprintf("overhead %s RSS, PSS %s, guest touched %s", FormatKiB(MedianKiB(ov)), FormatKiB(MedianKiB(pss)), FormatKiB(MedianKiB(guest)))
	}
	peak := m.MemoryKiB(func(x Memory) uint64 { return x.PeakRSS })
	if len(peak) == 0 {
		return "-"
	}
	return "peak RSS " + FormatKiB(MedianKiB(peak))
}

// medianSteps is the median of each of the steps over a method's counted
// samples that have them, in the samples' order of steps.
func medianSteps(m *Method) ([]Step, int) {
	var names []string
	took := map[string][]time.Duration{}
	n := 0
	for _, s := range m.Samples {
		if s.Warmup || !s.OK() || len(s.Steps) == 0 {
			continue
		}
		n++
		for _, st := range s.Steps {
			if _, ok := took[st.Name]; !ok {
				names = append(names, st.Name)
			}
			took[st.Name] = append(took[st.Name], st.Took)
		}
	}
	steps := make([]Step, len(names))
	for i, name := range names {
		steps[i] = Step{Name: name, Took: Summarize(took[name]).Median}
	}
	return steps, n
}
