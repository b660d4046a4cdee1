package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEchoShowsOnePackageAtATime(t *testing.T) {
	var w strings.Builder
	ec := newEchoer(&w)
	step := func(e event, want string) {
		t.Helper()
		require.NoError(t, ec.event(e))
		require.Equal(t, want, w.String())
	}
	out := func(pkg, test, text string) event {
		return event{Action: "output", Package: pkg, Test: test, Output: text}
	}
	a := "=== RUN   TestA\n"
	step(event{Action: "start", Package: "a"}, "")
	step(out("a", "TestA", "=== RUN   TestA\n"), a) // a is live
	step(out("b", "TestB", "=== RUN   TestB\n"), a) // b is held back
	step(out("b", "TestB", "--- PASS: TestB (0.00s)\n"), a)
	step(out("b", "", "ok  \tb\t0.01s\n"), a)
	step(event{Action: "pass", Package: "b"}, a)
	step(out("c", "TestC", "=== RUN   TestC\n"), a)
	step(event{ImportPath: "d [d.test]", Action: "build-output", Output: "d_test.go:1:1: expected 'package'\n"}, a)
	a += "    a_test.go:3: working\n"
	step(out("a", "TestA", "    a_test.go:3: working\n"), a)
	a += "--- PASS: TestA (0.00s)\n"
	step(out("a", "TestA", "--- PASS: TestA (0.00s)\n"), a)
	a += "ok  \ta\t0.02s\n"
	step(out("a", "", "ok  \ta\t0.02s\n"), a)
	// a ends: b, which ended, is shown whole, then c, which goes on live;
	// d's build errors wait for c.
	all := a + "=== RUN   TestB\n--- PASS: TestB (0.00s)\nok  \tb\t0.01s\n" + "=== RUN   TestC\n"
	step(event{Action: "pass", Package: "a"}, all)
	all += "    c_test.go:9: still here\n"
	step(out("c", "TestC", "    c_test.go:9: still here\n"), all)
	require.NoError(t, ec.flush())
	require.Equal(t, all+"d_test.go:1:1: expected 'package'\n", w.String(), "the end of the stream shows what is held")
}

func TestEchoOfPackagesRunAtOnce(t *testing.T) {
	// go test ran these packages at once: the events of timeout come
	// before and after those of the others.
	whole, err := os.ReadFile("testdata/interleaved.json")
	require.NoError(t, err)
	var w strings.Builder
	r := newReport()
	require.NoError(t, read(bytes.NewReader(whole), r, &w))
	require.Equal(t, []string{"timeout", "parallel", "pass", "skips", "timeout"}, packageRuns(t, whole),
		"the recording no longer interleaves")
	// The echo shows each package whole, from its first test to go test's
	// line for it, in the order they started.
	echo := w.String()
	at := 0
	for _, p := range []struct{ first, last string }{
		{"=== RUN   TestQuick\n", "FAIL\texample.com/sample/timeout\t"},
		{"=== RUN   TestParallel\n", "FAIL\texample.com/sample/parallel\t"},
		{"=== RUN   TestOne\n", "ok  \texample.com/sample/pass\t"},
		{"=== RUN   TestGuestA\n", "ok  \texample.com/sample/skips\t"},
	} {
		first, last := strings.Index(echo, p.first), strings.Index(echo, p.last)
		require.True(t, at <= first && first < last, "%q at %d, %q at %d, after %d", p.first, first, p.last, last, at)
		at = last
	}
}

// packageRuns lists the packages of a stream's events, a package once
// for each run of events in a row.
func packageRuns(t *testing.T, stream []byte) []string {
	var runs []string
	for _, line := range bytes.Split(bytes.TrimSpace(stream), []byte("\n")) {
		var e event
		require.NoError(t, json.Unmarshal(line, &e))
		p := strings.TrimPrefix(e.Package, sample)
		if len(runs) == 0 || runs[len(runs)-1] != p {
			runs = append(runs, p)
		}
	}
	return runs
}
