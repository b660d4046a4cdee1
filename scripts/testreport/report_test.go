package main

// The streams in testdata/ are go test -json recordings (testdata/record.sh
// makes them): of the sample packages in testdata/sample, and of the guest
// package cmd/kiln with -short and with /dev/kvm hidden, where no guest
// boots.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const sample = "example.com/sample/"

// load reads recordings into a finished report.
func load(t *testing.T, names ...string) *report {
	t.Helper()
	r := newReport()
	for _, name := range names {
		f, err := os.Open(filepath.Join("testdata", name))
		require.NoError(t, err)
		require.NoError(t, read(f, r, nil))
		f.Close()
	}
	r.finish()
	return r
}

// stream writes events as go test -json does, one a line.
func stream(t *testing.T, events ...event) string {
	t.Helper()
	var b strings.Builder
	for _, e := range events {
		j, err := json.Marshal(e)
		require.NoError(t, err)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func summaryOf(t *testing.T, r *report, path string) pkgSummary {
	t.Helper()
	p := r.byPath[path]
	require.NotNil(t, p, "no package %s in the stream", path)
	return policy{guestPackage: guestPackage}.summarizePkg(p)
}

func TestTestsAndSubtestsCountedApart(t *testing.T) {
	s := summaryOf(t, load(t, "mixed.json"), sample+"pass")
	require.Equal(t, tally{passed: 2}, s.tests)
	require.Equal(t, tally{passed: 2, skipped: 1}, s.subtests)
	require.Empty(t, s.problem)
	require.Empty(t, s.failedNames)
}

func TestSkipReasonsAreGrouped(t *testing.T) {
	s := summaryOf(t, load(t, "mixed.json"), sample+"skips")
	require.Equal(t, tally{passed: 1, skipped: 7}, s.tests)
	require.Equal(t, []skipGroup{
		// TestGuestC logged a line before its skip, and the cleanup of
		// TestCleanupLogsAfterTheSkip one after: the reason is still the
		// SKIPPED message.
		{"SKIPPED, NO KVM: open /dev/kvm: no such file or directory: this test boots a real guest and did not run",
			[]string{"TestGuestA", "TestGuestB", "TestGuestC", "TestCleanupLogsAfterTheSkip"}},
		{"giving files to another user needs root", []string{"TestRoot"}},
		{"(no reason given)", []string{"TestNoReason"}},
		{"line one", []string{"TestMultiLine"}}, // a message's first line
	}, s.skips)
}

func TestFailedTestsAndSubtestsAreNamed(t *testing.T) {
	s := summaryOf(t, load(t, "mixed.json"), sample+"fails")
	require.Equal(t, tally{passed: 1, failed: 2}, s.tests)
	require.Equal(t, tally{passed: 1, failed: 1}, s.subtests)
	require.Equal(t, []string{"TestFails", "TestSubFails", "TestSubFails/bad"}, s.failedNames)
	require.Empty(t, s.problem, "the package's failure is its tests'")
}

func TestBuildFailuresSayTheFirstError(t *testing.T) {
	r := load(t, "mixed.json")
	s := summaryOf(t, r, sample+"buildfail")
	require.Equal(t, `did not build: buildfail/buildfail_test.go:6:44: cannot use "not an int" (untyped string constant) as int value in variable declaration`, s.problem)
	require.Zero(t, s.tests)
	s = summaryOf(t, r, sample+"setupfail")
	require.Equal(t, "did not build: setupfail/setupfail_test.go:7:2: no required module provides package example.com/nowhere/missing; to add it:", s.problem)
}

func TestFailureOutsideAnyTest(t *testing.T) {
	s := summaryOf(t, load(t, "mixed.json"), sample+"mainfails")
	require.Equal(t, tally{passed: 1}, s.tests)
	require.Equal(t, "failed outside any test (TestMain, init, a crash); its last words: leaked 3 temporary directories", s.problem)
}

func TestNoTestFiles(t *testing.T) {
	r := load(t, "mixed.json")
	require.True(t, r.byPath[sample+"nofiles"].noTestFiles)
	require.False(t, r.byPath[sample+"pass"].noTestFiles)
}

func TestAPanicFailsItsTest(t *testing.T) {
	s := summaryOf(t, load(t, "panic.json"), sample+"panics")
	// TestAfter never started: the panic ended the test binary.
	require.Equal(t, tally{passed: 1, failed: 1}, s.tests)
	require.Equal(t, []string{"TestPanics"}, s.failedNames)
}

func TestATimeoutFailsTheTestThatHung(t *testing.T) {
	s := summaryOf(t, load(t, "timeout.json"), sample+"timeout")
	require.Equal(t, tally{passed: 1, failed: 1}, s.tests)
	require.Equal(t, []string{"TestHangs (did not finish: test timed out after 2s)"}, s.failedNames)
}

func TestParallelOutputGoesToItsTest(t *testing.T) {
	r := load(t, "parallel.json")
	p := r.byPath[sample+"parallel"]
	for _, name := range []string{"a", "c"} {
		require.Equal(t, name+" step 2", p.byName["TestParallel/"+name].lastLog)
	}
	require.Equal(t, "SKIPPED: b is not installed", p.byName["TestParallel/b"].reason())
	s := summaryOf(t, r, sample+"parallel")
	require.Equal(t, tally{passed: 2, failed: 1}, s.tests)
	require.Equal(t, tally{passed: 2, skipped: 1}, s.subtests)
	require.Equal(t, []string{"TestTopB"}, s.failedNames)
}

func TestAStreamCutShort(t *testing.T) {
	// The stream of parallel.json up to the moment TestParallel/a and
	// TestParallel/c are running: as if go test were killed there.
	whole, err := os.ReadFile("testdata/parallel.json")
	require.NoError(t, err)
	var cut bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(whole))
	for sc.Scan() && !strings.Contains(sc.Text(), "a step 1") {
		cut.Write(sc.Bytes())
		cut.WriteByte('\n')
	}
	r := newReport()
	require.NoError(t, read(&cut, r, nil))
	r.finish()
	s := summaryOf(t, r, sample+"parallel")
	require.Equal(t, "did not finish: the stream ends before its result (was go test killed?)", s.problem)
	require.Equal(t, []string{"TestParallel (did not finish)", "TestParallel/a (did not finish)",
		"TestParallel/b (did not finish)", "TestParallel/c (did not finish)"}, s.failedNames)
}

func TestLinesThatAreNotEvents(t *testing.T) {
	in := "go: downloading example.com/x v1.0.0\n" + stream(t,
		event{Action: "start", Package: "p"},
		event{Action: "run", Package: "p", Test: "TestA"},
		event{Action: "pass", Package: "p", Test: "TestA"},
		event{Action: "pass", Package: "p"},
	) + "{not json"
	r := newReport()
	var echo strings.Builder
	require.NoError(t, read(strings.NewReader(in), r, &echo))
	require.Equal(t, 4, r.events)
	require.Equal(t, 2, r.others)
	require.Equal(t, "go: downloading example.com/x v1.0.0\n{not json", echo.String())
}

func TestEchoShowsWhatGoTestVShows(t *testing.T) {
	f, err := os.Open("testdata/parallel.json")
	require.NoError(t, err)
	defer f.Close()
	var echo strings.Builder
	require.NoError(t, read(f, newReport(), &echo))
	// Interleaved output is named as go test -v names it.
	require.Contains(t, echo.String(), "=== CONT  TestParallel/c\n    parallel_test.go:14: c step 0\n"+
		"=== NAME  TestParallel/a\n    parallel_test.go:14: a step 1\n")
	require.Contains(t, echo.String(), "--- SKIP: TestParallel/b (")
	require.True(t, strings.HasPrefix(echo.String(), "=== RUN   TestParallel\n=== RUN   TestParallel/a\n=== PAUSE TestParallel/a\n"))
	require.Regexp(t, `\nFAIL\nFAIL\texample.com/sample/parallel\t[0-9.]+s\n$`, echo.String())

	f, err = os.Open("testdata/mixed.json")
	require.NoError(t, err)
	defer f.Close()
	echo.Reset()
	require.NoError(t, read(f, newReport(), &echo))
	require.Contains(t, echo.String(), "# example.com/sample/buildfail [example.com/sample/buildfail.test]\n"+
		"buildfail/buildfail_test.go:6:44: cannot use")
}
