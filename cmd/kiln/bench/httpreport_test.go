package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// httpResults is a small HTTP run: runc and kiln rows with bursts and
// memory, an unavailable ready-app row, a failed start, a teardown that
// left something, and density runs.
func httpResults() *Results {
	srv := func(round int, ready, first time.Duration, p50, p99 time.Duration, rps float64, mem Memory) Sample {
		return Sample{Round: round, Ready: ready, FirstHTTP: first, Teardown: 400 * time.Millisecond,
			Burst:  &BurstResult{Requests: 500, P50: p50, P99: p99, RPS: rps, Took: time.Second},
			Memory: &mem}
	}
	runcMem := Memory{RSS: 7700, PSS: 6600, Processes: 2}
	vmMem := Memory{RSS: 40000, PSS: 36000, Guest: 33000, Overhead: 7000, Processes: 1}
	spec := DefaultBurst
	return &Results{
		Host:     Host{KVM: "kvm-pvm (software nested virtualization)", PVM: true, CPUs: 2, CPU: "test CPU", Kernel: "6.1"},
		Settings: Settings{Rounds: 2, Warmup: 1, Command: serviceCommand, MemoryMB: 128, Workload: "http", Burst: &spec},
		Methods: []Method{
			{Name: "podman+runc", Kind: "container", Samples: []Sample{
				{Round: 1, Warmup: true, Ready: time.Second, FirstHTTP: 2 * time.Second},
				srv(2, 270*time.Millisecond, 320*time.Millisecond, 170*time.Microsecond, time.Millisecond, 19000, runcMem),
				srv(3, 330*time.Millisecond, 370*time.Millisecond, 180*time.Microsecond, 2*time.Millisecond, 21000, runcMem)}},
			{Name: "kiln", Kind: "vm", Samples: []Sample{
				srv(2, 20*time.Second, 31*time.Second, 9*time.Millisecond, 40*time.Millisecond, 300, vmMem),
				srv(3, 22*time.Second, 33*time.Second, 11*time.Millisecond, 60*time.Millisecond, 280, vmMem)}},
			{Name: "ctr+kiln", Kind: "container", Samples: []Sample{
				{Round: 2, Err: "ctr run -d --cni: exit status 1: boom", Teardown: time.Second},
				func() Sample {
					s := srv(3, 50*time.Second, 58*time.Second, 9*time.Millisecond, 50*time.Millisecond, 290, vmMem)
					s.TeardownErr = "left behind: process 42"
					s.Burst.Errors, s.Burst.Cut = 3, true
					return s
				}()}},
			{Name: "kiln-restore-ready", Kind: "vm", Unavailable: "this kiln's snapshot has no --ready-port"},
		},
		Density: []Density{
			{VMs: 8, Method: "podman+runc", AllServing: 2 * time.Second, TotalPSS: 16000, TotalRSS: 58000},
			{VMs: 8, Method: "kiln", AllServing: 3 * time.Minute, TotalPSS: 290000, TotalRSS: 320000, TotalOverhead: 56000},
			{VMs: 16, Method: "kiln", AllServing: 5 * time.Minute, Err: "3 of 16: never answered 200"},
		},
	}
}

func TestHTTPReport(t *testing.T) {
	var b bytes.Buffer
	WriteReport(&b, httpResults())
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"kiln bench --workload http: 2 rounds after 1 warm-up, service `httpd -addr :8080` on :8080, 128 MiB guests",
		"burst: 500 GETs of / from the host, 4 connections at once, keep-alive on",
		"note: software-nested KVM",
		"kiln-restore-ready: unavailable: this kiln's snapshot has no --ready-port",
		"ctr+kiln: 1 of 2 starts failed; first: ctr run -d --cni: exit status 1: boom",
		"ctr+kiln: teardown of round 3: left behind: process 42",
		"ctr+kiln: burst of round 3: p50 9.00 ms p99 50.0 ms, 290 req/s (500 ok, 3 errors, cut at the deadline)",
		"8 × podman+runc: all answered 200 after 2.00 s; total PSS 15.6 MiB, RSS 56.6 MiB",
		"8 × kiln: all answered 200 after 3.0 min; total PSS 283 MiB, RSS 312 MiB, VMM overhead 54.7 MiB",
		"16 × kiln: not all answered 200, gave up after 5.0 min; total PSS 0 KiB, RSS 0 KiB; failed: 3 of 16: never answered 200",
	} {
		require.Contains(t, out, want)
	}
	lines := strings.Split(out, "\n")
	row := func(name string) string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 1 && f[0] == name && f[1] >= "0" && f[1] <= "9" {
				return l
			}
		}
		t.Fatalf("no row for %s", name)
		return ""
	}
	// Medians of the counted samples (the warm-up left out): ready, first
	// 200 min/median/max, burst p50/p99/rate, teardown, memory.
	require.Equal(t, strings.Fields("podman+runc 2 300 ms 320 ms 345 ms 370 ms 175 µs 1.50 ms 20000 400 ms PSS 6.45 MiB, RSS 7.52 MiB, 2 processes"),
		strings.Fields(row("podman+runc")))
	require.Contains(t, row("kiln"), "PSS 35.2 MiB, RSS 39.1 MiB, 1 processes; VMM overhead 6.84 MiB, guest touched 32.2 MiB")
	require.Contains(t, row("ctr+kiln"), "ctr+kiln  1") // one counted sample
	require.NotContains(t, out, "kiln-restore-ready  ", "an unavailable method has no row")
	require.NotContains(t, out, "kiln boot vs QEMU", "the HTTP workload has none of the boot workload's goals")
}

func TestHTTPGoals(t *testing.T) {
	r := httpResults()
	r.Goals = CheckHTTPGoals(r)
	require.Len(t, r.Goals, 5)
	ready, cold := r.Goals[0], r.Goals[2]
	require.False(t, ready.Known)
	require.Contains(t, ready.Note, "kiln-restore-ready unavailable: this kiln's snapshot has no --ready-port")
	require.True(t, cold.Known)
	require.Equal(t, "93 × (kiln 32.0 s, podman+runc 345 ms)", fmtRatio(cold.Value))
	var b bytes.Buffer
	WriteReport(&b, r)
	require.Contains(t, b.String(), "[unknown] ready-app restore vs podman+runc: kiln-restore-ready launch → first HTTP 200 ≤ 1 × podman+runc's (medians)")
	require.Contains(t, b.String(), "[info] cold boot vs podman+runc")

	// A ready-app row that answers sooner than runc meets it.
	r.Methods[3] = Method{Name: "kiln-restore-ready", Kind: "vm", Samples: []Sample{{Round: 2, FirstHTTP: 200 * time.Millisecond}}}
	g := CheckHTTPGoals(r)[0]
	require.True(t, g.Known && g.Met, "%+v", g)
	require.Equal(t, "0.58 × (kiln-restore-ready 200 ms, podman+runc 345 ms)", g.Value)
}

func TestHTTPCloneGoals(t *testing.T) {
	r := httpResults()
	goals := CheckHTTPGoals(r)
	mem, rate := goals[3], goals[4]
	require.False(t, mem.Known || rate.Known, "no clone run: unknown")
	require.Contains(t, mem.Note, "kiln-restore-ready unavailable")

	// 16 clones all answering in 4 s on 2 cores: 4 a second, 2 per core;
	// their PSS against the kiln row's median, 36000 KiB. The 32-clone
	// run in which one never answered decides nothing.
	r.Density = append(r.Density,
		Density{VMs: 32, Method: "kiln-restore-ready", Restored: true, AllServing: 5 * time.Second, Err: "1 of 32: never answered 200"},
		Density{VMs: 16, Method: "kiln-restore-ready", Restored: true, AllServing: 4 * time.Second, TotalPSS: 50000, PerSecond: 4, PerCoreSecond: 2},
	)
	goals = CheckHTTPGoals(r)
	mem, rate = goals[3], goals[4]
	require.True(t, mem.Known && mem.Met, "%+v", mem)
	require.Equal(t, "1.39 × (16 clones 48.8 MiB, 1 booted 35.2 MiB)", mem.Value, "the largest run in which all answered")
	require.Equal(t, "4.0 per second, 2.0 per host core (16 clones all answered after 4.00 s)", rate.Value)
	r.Density[len(r.Density)-1].TotalPSS = 60000
	require.False(t, CheckHTTPGoals(r)[3].Met, "1.67 × misses")

	var b bytes.Buffer
	WriteReport(&b, r)
	require.Contains(t, b.String(), "16 × kiln-restore-ready: all answered 200 after 4.00 s; total PSS 58.6 MiB, RSS 0 KiB; 4.0 restored and serving per second (2.0 per host core)")
}

// fmtRatio is the value as CheckHTTPGoals writes it with the ratio
// rounded to whole numbers, for a stable comparison.
func fmtRatio(v string) string {
	ratio, rest, _ := strings.Cut(v, " ")
	f, _ := strconv.ParseFloat(ratio, 64)
	return fmt.Sprintf("%.0f %s", f, rest)
}

func TestHTTPReportKeepAliveOff(t *testing.T) {
	r := httpResults()
	r.Settings.Burst.KeepAlive = false
	var b bytes.Buffer
	WriteReport(&b, r)
	require.Contains(t, b.String(), "keep-alive off: a new connection per request")
}

func TestHTTPSVG(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteSVG(&b, httpResults()))
	svg := b.String()
	require.NoError(t, xml.Unmarshal(b.Bytes(), new(any)), "well-formed XML")
	for _, want := range []string{
		"kiln bench --workload http: launch to ready and to the first HTTP 200 (log scale)",
		"launch → ready (own)", "launch → first 200",
		"density: K instances serving at once",
		"8 × podman+runc: 2.00 s, total PSS 16 MiB",
		"8 × kiln: 3.00 min, total PSS 283 MiB",
		"unavailable: this kiln&#39;s snapshot has no --ready-port",
		"16 × kiln: error: 3 of 16: never answered 200",
	} {
		require.Contains(t, svg, want)
	}
	require.NotContains(t, svg, "launch → exit", "the HTTP workload's lanes are its own measures")
}

func TestCheckHTTPOptions(t *testing.T) {
	o := Options{Rounds: 1, Timeout: time.Minute, Workload: "http", Burst: DefaultBurst, Only: []string{"kiln-restore-ready", "podman+runc"}}
	require.NoError(t, o.Check())
	o.Only = []string{"qemu-microvm"}
	require.ErrorContains(t, o.Check(), `unknown method "qemu-microvm" in --only`)
	o.Only = nil
	o.Burst.Conns = 0
	require.ErrorContains(t, o.Check(), "--burst wants")
	o.Burst = DefaultBurst
	o.Workload = "grpc"
	require.ErrorContains(t, o.Check(), `unknown --workload "grpc"`)
}
