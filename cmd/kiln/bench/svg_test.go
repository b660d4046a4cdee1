package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sampleResults has a VM with warm-up, failed and counted samples, a
// container, an unavailable method and two density runs.
func sampleResults() *Results {
	vm := Method{Name: "kiln", Kind: "vm", Samples: []Sample{
		{Round: 1, Warmup: true, Userspace: 40 * time.Second, Exit: 41 * time.Second},
		{Round: 2, Userspace: 21 * time.Second, Exit: 22 * time.Second},
		{Round: 3, Userspace: 22600 * time.Millisecond, Exit: 23 * time.Second},
		{Round: 4, Userspace: 24 * time.Second, Exit: 25 * time.Second},
		{Round: 5, Err: "timed out"},
	}}
	ct := Method{Name: "crun", Kind: "container", Samples: []Sample{
		{Round: 2, Exit: 50 * time.Millisecond},
		{Round: 3, Exit: 60 * time.Millisecond},
		{Round: 4, Exit: 80 * time.Millisecond},
		{Round: 5, Exit: 0}, // not measured: not drawn
	}}
	return &Results{
		Host:     Host{KVM: "kvm-pvm"},
		Settings: Settings{Rounds: 4, Command: []string{"/bin/true", "x"}},
		Started:  time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC),
		Methods: []Method{vm, ct,
			{Name: "runc", Kind: "container", Unavailable: "runc not found <&> in PATH"}},
		Density: []Density{
			{VMs: 4, AllUserspace: 30 * time.Second, TotalRSS: 400 * 1024},
			{VMs: 8, Err: "out of memory <x>"},
		},
	}
}

// render draws r and checks that the output is well-formed XML.
func render(t *testing.T, r *Results) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WriteSVG(&b, r))
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, b.String())
	}
	return b.String()
}

func TestWriteSVG(t *testing.T) {
	out := render(t, sampleResults())

	// 3 + 3 kiln samples (user space and exit), 3 crun samples.
	require.Equal(t, 9, strings.Count(out, "<circle"))
	require.Contains(t, out, "kiln bench: launch times (log scale)")
	require.Contains(t, out, "host KVM: kvm-pvm · 4 rounds · 2025-03-01 12:30 UTC · command: /bin/true x")
	require.Contains(t, out, "unavailable: runc not found &lt;&amp;&gt; in PATH")
	require.NotContains(t, out, "<&>")
	require.Contains(t, out, ">median 22.6 s<")
	require.Contains(t, out, ">median 23.0 s<")
	require.Contains(t, out, ">median 60.0 ms<")
	require.Contains(t, out, ">launch → user space<")
	require.Contains(t, out, ">launch → exit<")
	// 50 ms to 25 s: the axis runs from 10 ms to 100 s.
	for _, l := range []string{"10 ms", "100 ms", "1 s", "10 s", "100 s"} {
		require.Contains(t, out, ">"+l+"<")
	}
	require.NotContains(t, out, ">1 ms<")
	require.Contains(t, out, ">4 VMs: 30.0 s, total RSS 400 MiB<")
	require.Contains(t, out, ">8 VMs: error: out of memory &lt;x&gt;<")
}

func TestWriteSVGLongReason(t *testing.T) {
	r := &Results{Methods: []Method{{Name: "qemu-microvm", Kind: "vm", Unavailable: strings.Repeat("y", 200)}}}
	out := render(t, r)
	require.Contains(t, out, "…")
	require.NotContains(t, out, strings.Repeat("y", 100))
	require.Zero(t, strings.Count(out, "<circle"))
}

func TestWriteSVGEmpty(t *testing.T) {
	out := render(t, &Results{})
	require.Zero(t, strings.Count(out, "<circle"))
	require.Contains(t, out, "no methods were measured")
}

func TestWriteSVGAllEqual(t *testing.T) {
	m := Method{Name: "fork/exec", Kind: "process"}
	for i := range 3 {
		m.Samples = append(m.Samples, Sample{Round: i + 1, Exit: time.Second})
	}
	out := render(t, &Results{Methods: []Method{m}})
	require.Equal(t, 3, strings.Count(out, "<circle"))
	require.Contains(t, out, ">median 1.00 s<")
	require.Contains(t, out, ">1 s<")
	require.Contains(t, out, ">10 s<")
}

func TestWriteSVGSingleSample(t *testing.T) {
	m := Method{Name: "unshare", Kind: "process", Samples: []Sample{{Exit: 3 * time.Millisecond}}}
	out := render(t, &Results{Methods: []Method{m}})
	require.Equal(t, 1, strings.Count(out, "<circle"))
	require.Contains(t, out, ">median 3.00 ms<")
}

func TestWriteSVGNoCountedSamples(t *testing.T) {
	m := Method{Name: "runc", Kind: "container", Samples: []Sample{{Err: "exit status 1"}}}
	out := render(t, &Results{Methods: []Method{m}})
	require.Zero(t, strings.Count(out, "<circle"))
	require.Contains(t, out, "no counted samples, 1 failed: exit status 1")
}

func TestLogScale(t *testing.T) {
	s := newLogScale([]time.Duration{1500 * time.Microsecond, 60 * time.Second}, 100, 600)
	require.Equal(t, 6, s.lo)  // 1 ms
	require.Equal(t, 11, s.hi) // 100 s
	require.InDelta(t, 100, s.x(time.Millisecond), 1e-9)
	require.InDelta(t, 600, s.x(100*time.Second), 1e-9)

	// Monotonic.
	prev := s.x(time.Millisecond)
	for _, d := range []time.Duration{2 * time.Millisecond, 10 * time.Millisecond, time.Second, time.Minute} {
		x := s.x(d)
		require.Greater(t, x, prev, d)
		prev = x
	}
	// Logarithmic: every decade is as wide as the next, a 10× step is
	// 10× wider than nothing.
	step := s.x(10*time.Millisecond) - s.x(time.Millisecond)
	require.InDelta(t, 100, step, 1e-9)
	require.InDelta(t, step, s.x(10*time.Second)-s.x(time.Second), 1e-9)
	require.InDelta(t, step, s.x(50*time.Second)-s.x(5*time.Second), 1e-9)
}

func TestLogScaleDegenerate(t *testing.T) {
	one := newLogScale([]time.Duration{time.Second}, 0, 100)
	require.Equal(t, 9, one.lo)
	require.Equal(t, 10, one.hi)
	none := newLogScale(nil, 0, 100)
	require.Less(t, none.lo, none.hi)
	x := none.x(time.Second)
	require.False(t, math.IsNaN(x) || math.IsInf(x, 0))
}

func TestTicks(t *testing.T) {
	// One decade on a wide axis: 2× and the minute fit, 50 s is too
	// close to the minute.
	s := newLogScale([]time.Duration{12 * time.Second, 60 * time.Second}, 0, 550)
	var labels []string
	for _, tk := range s.ticks(tickGap) {
		labels = append(labels, tk.label)
	}
	require.Equal(t, []string{"10 s", "20 s", "1 min", "100 s"}, labels)

	// Six decades: only the decades fit.
	s = newLogScale([]time.Duration{time.Millisecond, 60 * time.Second}, 0, 530)
	labels = nil
	for _, tk := range s.ticks(tickGap) {
		labels = append(labels, tk.label)
	}
	require.Equal(t, []string{"1 ms", "10 ms", "100 ms", "1 s", "10 s", "100 s"}, labels)
}

func TestFormat(t *testing.T) {
	require.Equal(t, "1 min", tickLabel(60e9))
	require.Equal(t, "500 µs", tickLabel(5e5))
	require.Equal(t, "22.6 s", fmtDur(22600*time.Millisecond))
	require.Equal(t, "1.23 ms", fmtDur(1230*time.Microsecond))
	require.Equal(t, "456 ms", fmtDur(456*time.Millisecond))
	require.Equal(t, "2.50 min", fmtDur(150*time.Second))
	require.Equal(t, "abc…", truncate("abcdef", 4))
	require.Equal(t, "abc", truncate("abc", 4))
}
