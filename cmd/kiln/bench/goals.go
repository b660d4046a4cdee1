package bench

import (
	"fmt"
	"time"
)

// OverheadGoalKiB is kiln's memory goal: the VMM itself (everything but
// the guest's RAM) in at most 4 MiB, below Firecracker's published 5 MiB.
const OverheadGoalKiB = 4 << 10

// RestoreWorkGoal is kiln's restore goal: from kiln's start to the
// restored VM's first KVM_RUN, Firecracker's CI baseline on hardware
// being 2.92 ms at P50.
const RestoreWorkGoal = 3 * time.Millisecond

// CheckGoals compares the run's medians with kiln's goals. A goal the run
// has no numbers for is reported as unknown, with the reason.
func CheckGoals(r *Results) []Goal {
	var goals []Goal
	kiln, qemu, crun := r.Find("kiln"), r.Find("qemu-microvm"), r.Find("crun")

	g := Goal{Name: "kiln boot vs QEMU microvm", Target: "kiln launch → user space ≤ 0.5 × QEMU microvm's (medians, same kernel, initramfs, command line and KVM)"}
	ks, qs := summaryOf(kiln, ToUserspace), summaryOf(qemu, ToUserspace)
	if ks.N > 0 && qs.N > 0 {
		ratio := float64(ks.Median) / float64(qs.Median)
		g.Known, g.Met = true, ratio <= 0.5
		g.Value = fmt.Sprintf("%.2f × (kiln %s, QEMU %s)", ratio, FormatDuration(ks.Median), FormatDuration(qs.Median))
	} else {
		g.Note = "needs samples from both kiln and QEMU" + unavailableNote(kiln, qemu)
	}
	goals = append(goals, g)

	g = Goal{Name: "kiln VMM memory overhead", Target: "≤ 4 MiB RSS beyond the guest memory touched while the guest's command runs (samples every 100 ms; median of the rounds)"}
	if kiln != nil {
		if v := kiln.MemoryKiB(func(m Memory) uint64 { return m.Overhead }); len(v) > 0 {
			med := MedianKiB(v)
			g.Known, g.Met = true, med <= OverheadGoalKiB
			g.Value = FormatKiB(med)
		}
	}
	if !g.Known {
		g.Note = "no memory samples from kiln" + unavailableNote(kiln)
	}
	goals = append(goals, g)

	g = Goal{Name: "kiln vs crun run", Target: "reported, not a target: launch → exit, medians"}
	ke, ce := summaryOf(kiln, ToExit), summaryOf(crun, ToExit)
	if ke.N > 0 && ce.N > 0 {
		g.Known, g.Met = true, true
		g.Value = fmt.Sprintf("%.0f × (kiln %s, crun %s)", float64(ke.Median)/float64(ce.Median), FormatDuration(ke.Median), FormatDuration(ce.Median))
		if r.Host.PVM {
			g.Note = "on this software-nested KVM (kvm-pvm) guest kernel code runs largely in an instruction emulator; hardware KVM is where the absolute VM numbers mean something"
		}
	} else {
		g.Note = "needs samples from both kiln and crun" + unavailableNote(kiln, crun)
	}
	goals = append(goals, g)

	restore := r.Find("kiln-restore")
	g = Goal{Name: "kiln restore vs crun run", Target: "kiln-restore launch → exit ≤ 1 × crun launch → exit (medians of the same run; launch → user space is reported, no goal: a restored VM is in user space from its first instruction)"}
	re := summaryOf(restore, ToExit)
	if re.N > 0 && ce.N > 0 {
		ratio := float64(re.Median) / float64(ce.Median)
		g.Known, g.Met = true, ratio <= 1
		g.Value = fmt.Sprintf("%.2f × (kiln restored to exit %s, crun run %s; restored to user space %s)",
			ratio, FormatDuration(re.Median), FormatDuration(ce.Median), FormatDuration(summaryOf(restore, ToUserspace).Median))
	} else {
		g.Note = "needs samples from both kiln-restore and crun" + unavailableNote(restore, crun)
	}
	goals = append(goals, g)

	g = Goal{Name: "kiln restore work", Target: "≤ 3 ms from kiln's start to the restored VM's first KVM_RUN (median)"}
	if p, n := medianPhases(restore); n > 0 {
		g.Known, g.Met = true, p.VMMSetup <= RestoreWorkGoal
		g.Value = FormatDuration(p.VMMSetup)
	} else {
		g.Note = "no kiln-restore samples with phases" + unavailableNote(restore)
	}
	goals = append(goals, g)

	g = Goal{Name: "restored VMs' memory", Target: "8 VMs restored from one snapshot at once: total PSS ≤ 2 × one cold-booted VM's"}
	var eight, one *Density
	for i := range r.Density {
		d := &r.Density[i]
		switch {
		case d.Restored && d.VMs == 8 && d.Err == "":
			eight = d
		case !d.Restored && d.VMs == 1 && d.Err == "":
			one = d
		}
	}
	if eight != nil && one != nil && one.TotalPSS > 0 {
		ratio := float64(eight.TotalPSS) / float64(one.TotalPSS)
		g.Known, g.Met = true, ratio <= 2
		g.Value = fmt.Sprintf("%.2f × (8 restored %s, 1 booted %s)", ratio, FormatKiB(eight.TotalPSS), FormatKiB(one.TotalPSS))
	} else {
		g.Note = "needs a density run of 1 booted VM and one of 8 restored VMs (--density 1 --restore-density 8)"
	}
	goals = append(goals, g)
	return goals
}

func summaryOf(m *Method, ms Measure) Summary {
	if m == nil {
		return Summary{}
	}
	return m.Summary(ms)
}

// unavailableNote explains missing methods.
func unavailableNote(ms ...*Method) string {
	s := ""
	for _, m := range ms {
		switch {
		case m == nil:
		case m.Unavailable != "":
			s += fmt.Sprintf("; %s unavailable: %s", m.Name, m.Unavailable)
		case len(m.Failures()) > 0:
			s += fmt.Sprintf("; %s failed: %s", m.Name, m.Failures()[0])
		}
	}
	return s
}

// medianPhases is the median of each boot phase over kiln's samples.
func medianPhases(m *Method) (Phases, int) {
	var setup, kernel, user []time.Duration
	if m != nil {
		for _, s := range m.Samples {
			if s.Warmup || !s.OK() || s.Phases == nil {
				continue
			}
			setup = append(setup, s.Phases.VMMSetup)
			kernel = append(kernel, s.Phases.Kernel)
			user = append(user, s.Phases.UserSpace)
		}
	}
	return Phases{
		VMMSetup:  Summarize(setup).Median,
		Kernel:    Summarize(kernel).Median,
		UserSpace: Summarize(user).Median,
	}, len(setup)
}

// CheckHTTPGoals compares the HTTP workload's medians with the goal
// issue 21 sets: a VM restored from a ready-app snapshot answers its
// first request no later than podman+runc's container does; the plain
// restore (httpd started after it) and the cold boot are reported
// against the same, as information.
func CheckHTTPGoals(r *Results) []Goal {
	runc := r.Find("podman+runc")
	rs := summaryOf(runc, ToFirstHTTP)
	var goals []Goal
	for _, c := range []struct {
		method, name, target string
		goal                 bool
	}{
		{"kiln-restore-ready", "ready-app restore vs podman+runc", "kiln-restore-ready launch → first HTTP 200 ≤ 1 × podman+runc's (medians)", true},
		{"kiln-restore", "restore, then httpd, vs podman+runc", "reported, not a target: launch → first HTTP 200, medians", false},
		{"kiln", "cold boot vs podman+runc", "reported, not a target: launch → first HTTP 200, medians", false},
	} {
		m := r.Find(c.method)
		g := Goal{Name: c.name, Target: c.target}
		ks := summaryOf(m, ToFirstHTTP)
		if ks.N > 0 && rs.N > 0 {
			ratio := float64(ks.Median) / float64(rs.Median)
			g.Known, g.Met = true, !c.goal || ratio <= 1
			g.Value = fmt.Sprintf("%.2f × (%s %s, podman+runc %s)", ratio, c.method, FormatDuration(ks.Median), FormatDuration(rs.Median))
		} else {
			g.Note = "needs samples from both " + c.method + " and podman+runc" + unavailableNote(m, runc)
		}
		goals = append(goals, g)
	}
	return append(goals, cloneGoals(r)...)
}

// ClonePSSGoal is issue 21's memory goal for clones: K VMs restored from
// one ready-app snapshot, serving at once, take at most this many times
// the PSS of one cold-booted VM serving the same (their unchanged pages
// are the snapshot's, shared in the page cache).
const ClonePSSGoal = 1.5

// cloneGoals are the clone runs' goals: the memory of the largest run
// of kiln-restore-ready clones in which every one answered, against the
// kiln row's median PSS (one cold-booted VM serving), and the clone rate
// of that run, reported.
func cloneGoals(r *Results) []Goal {
	var clones *Density
	for i := range r.Density {
		d := &r.Density[i]
		if d.Method == "kiln-restore-ready" && d.Err == "" && (clones == nil || d.VMs > clones.VMs) {
			clones = d
		}
	}
	cold := r.Find("kiln")
	var coldPSS uint64
	if cold != nil {
		if v := cold.MemoryKiB(func(m Memory) uint64 { return m.PSS }); len(v) > 0 {
			coldPSS = MedianKiB(v)
		}
	}
	mem := Goal{Name: "ready-app clones' memory", Target: fmt.Sprintf("K clones of one ready-app snapshot serving at once (--restore-density): total PSS ≤ %.1f × one cold-booted VM's (the kiln row's median)", ClonePSSGoal)}
	rate := Goal{Name: "clone rate", Target: "reported, not a target: ready-app clones restored and answering 200 per second, per host core"}
	switch {
	case clones == nil:
		why := "needs a kiln-restore-ready density run in which every clone answered (--restore-density 32)" + unavailableNote(r.Find("kiln-restore-ready"))
		mem.Note, rate.Note = why, why
	default:
		rate.Known, rate.Met = true, true
		rate.Value = fmt.Sprintf("%.1f per second, %.1f per host core (%d clones all answered after %s)", clones.PerSecond, clones.PerCoreSecond, clones.VMs, FormatDuration(clones.AllServing))
		if coldPSS == 0 {
			mem.Note = "needs the kiln row's memory samples (one cold-booted VM serving)" + unavailableNote(cold)
			break
		}
		ratio := float64(clones.TotalPSS) / float64(coldPSS)
		mem.Known, mem.Met = true, ratio <= ClonePSSGoal
		mem.Value = fmt.Sprintf("%.2f × (%d clones %s, 1 booted %s)", ratio, clones.VMs, FormatKiB(clones.TotalPSS), FormatKiB(coldPSS))
	}
	return []Goal{mem, rate}
}
