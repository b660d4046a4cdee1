package oci

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPhaseLog: marks from two "processes" of one container and one of
// another's land in one file, and read back in order.
func TestPhaseLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "phases")
	t.Setenv(PhasesEnv, path)
	at := time.Unix(100, 0)
	a, b, other := OpenPhaseLog("c1"), OpenPhaseLog("c1"), OpenPhaseLog("c2")
	a.MarkAt(StepCreate, at, nil)
	other.MarkAt(StepCreate, at.Add(time.Millisecond), nil)
	b.MarkAt(StepReady, at.Add(2*time.Millisecond), map[string]int64{"mounts": 5})
	a.Close()
	b.Close()
	other.Close()
	marks, err := ReadMarks(path)
	require.NoError(t, err)
	require.Equal(t, []Mark{
		{ID: "c1", Step: StepCreate, At: at.UnixNano()},
		{ID: "c2", Step: StepCreate, At: at.Add(time.Millisecond).UnixNano()},
		{ID: "c1", Step: StepReady, At: at.Add(2 * time.Millisecond).UnixNano(), Took: map[string]int64{"mounts": 5}},
	}, marks)

	// Without KILN_PHASES nothing is written, and a nil log is safe.
	t.Setenv(PhasesEnv, "")
	p := OpenPhaseLog("c1")
	require.Nil(t, p)
	p.Mark(StepStart, nil)
	p.Close()

	require.NoError(t, os.WriteFile(path, []byte("not a mark\n"), 0o600))
	_, err = ReadMarks(path)
	require.ErrorContains(t, err, "line 1 is not a phase mark")
}

// marksAt are one container's marks, each step at the given offset from
// t0 in milliseconds.
func marksAt(t0 time.Time, id string, ms map[string]int, took map[string]int64) []Mark {
	var m []Mark
	for _, s := range []string{StepCreate, StepVMM, StepBuilt, StepReady, StepCreated, StepStart, StepStarted, StepExited, StepEnd, StepDelete, StepDeleted} {
		if off, ok := ms[s]; ok {
			mk := Mark{ID: id, Step: s, At: t0.Add(time.Duration(off) * time.Millisecond).UnixNano()}
			if s == StepReady || s == StepStarted {
				mk.Took = took
			}
			m = append(m, mk)
		}
	}
	return m
}

func TestBreakdown(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := map[string]int{
		StepCreate: 100, StepVMM: 110, StepBuilt: 115, StepReady: 600, StepCreated: 610,
		StepStart: 700, StepStarted: 2700, StepExited: 2710, StepEnd: 2800, StepDelete: 2900, StepDeleted: 2950,
	}
	marks := marksAt(t0, "c1", ms, map[string]int64{"mounts": int64(300 * time.Millisecond), "exec": 1})
	// Another container's marks, later in the file, are not this one's.
	marks = append(marks, marksAt(t0, "c2", map[string]int{StepCreate: 0}, nil)...)
	p, err := Breakdown(marks, t0, t0.Add(3*time.Second))
	require.NoError(t, err)
	got := map[string]time.Duration{}
	var names []string
	var sum time.Duration
	for _, x := range p {
		got[x.Name] = x.Took
		names = append(names, x.Name)
		sum += x.Took
	}
	require.Equal(t, PhaseNames, names)
	ms2 := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	require.Equal(t, map[string]time.Duration{
		"kiln create": ms2(10 + 10), "restore": ms2(5), "guest's job": ms2(485 - 300), "mounts": ms2(300),
		"exec": ms2(2000), "workload": ms2(10), "teardown": ms2(90 + 50),
		"engine": ms2(3000 - 20 - 5 - 485 - 2000 - 10 - 140),
	}, got)
	require.Equal(t, 3*time.Second, sum, "the phases add up to launch → exit")

	// A delete after the engine's exit, or none, is not in its time.
	p, err = Breakdown(marks, t0, t0.Add(2920*time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, Span{"teardown", ms2(90)}, p[len(p)-1])
	delete(ms, StepDelete)
	p, err = Breakdown(marksAt(t0, "c1", ms, nil), t0, t0.Add(3*time.Second))
	require.NoError(t, err)
	require.Equal(t, Span{"teardown", ms2(90)}, p[len(p)-1])

	// A missing step, marks out of order, or kiln's phases longer than
	// the engine's whole run are errors, not a breakdown.
	delete(ms, StepStarted)
	_, err = Breakdown(marksAt(t0, "c1", ms, nil), t0, t0.Add(3*time.Second))
	require.ErrorContains(t, err, `no "started" mark`)
	ms[StepStarted] = 650
	_, err = Breakdown(marksAt(t0, "c1", ms, nil), t0, t0.Add(3*time.Second))
	require.ErrorContains(t, err, "out of order")
	ms[StepStarted] = 2700
	_, err = Breakdown(marksAt(t0, "c1", ms, nil), t0, t0.Add(time.Second))
	require.ErrorContains(t, err, "longer than launch → exit")
	_, err = Breakdown(nil, t0, t0)
	require.ErrorContains(t, err, "no phase marks")
}
