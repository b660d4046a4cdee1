package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	withKVM    = kvmHost{device: "/dev/kvm", usable: true}
	withoutKVM = kvmHost{device: "/dev/kvm", why: "open /dev/kvm: no such file or directory"}
)

// summarize runs the summary of recordings under a policy and returns
// its lines and whether it passed.
func summarize(t *testing.T, kvm kvmHost, names ...string) ([]string, bool) {
	t.Helper()
	var out strings.Builder
	ok := policy{guestPackage: guestPackage, kvm: kvm}.summarize(&out, load(t, names...), nil)
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"), ok
}

func last(lines []string) string { return lines[len(lines)-1] }

func TestGuestTestsSkippedWhereKVMWorksFail(t *testing.T) {
	// go test -short ./cmd/kiln: every guest test skips.
	lines, ok := summarize(t, withKVM, "kiln-short.json")
	require.False(t, ok)
	require.Equal(t, []string{
		"=== testreport: per package, tests passed, failed, skipped (subtests and fuzz seeds apart), and why they skipped",
		"FAIL  cmd/kiln  20 passed, 0 failed, 28 skipped; subtests 13 passed, 0 failed, 0 skipped",
		"        28 skipped (TestGuestAttack, TestBench and 26 more): SKIPPED with -short: boots a real guest",
		"        28 guest tests skipped although /dev/kvm is usable: that fails CI",
		"testreport: FAIL: 28 guest tests skipped although /dev/kvm is usable; 1 package; tests 20 passed, 0 failed, 28 skipped; subtests 13 passed, 0 failed, 0 skipped",
	}, lines)
}

func TestGuestTestsSkippedWithoutKVMPassLoudly(t *testing.T) {
	lines, ok := summarize(t, withoutKVM, "kiln-nokvm.json")
	require.True(t, ok)
	require.Equal(t, "ok    cmd/kiln  19 passed, 0 failed, 29 skipped; subtests 13 passed, 0 failed, 0 skipped", lines[1])
	require.Equal(t, "        29 guest tests skipped, and /dev/kvm cannot be used here (open /dev/kvm: no such file or directory): NOTHING ABOUT A REAL GUEST WAS TESTED", lines[3])
	require.Equal(t, "testreport: PASS, BUT NOTHING ABOUT A REAL GUEST WAS TESTED: 29 guest tests skipped, and /dev/kvm cannot be used here (open /dev/kvm: no such file or directory); 1 package; tests 19 passed, 0 failed, 29 skipped; subtests 13 passed, 0 failed, 0 skipped", last(lines))

	// The same stream where the device opens: those guests could have run.
	lines, ok = summarize(t, withKVM, "kiln-nokvm.json")
	require.False(t, ok)
	require.True(t, strings.HasPrefix(last(lines), "testreport: FAIL: 29 guest tests skipped although /dev/kvm is usable;"), last(lines))
}

func TestWhatIsAGuestTest(t *testing.T) {
	pol := policy{guestPackage: sample + "skips"}
	r := load(t, "mixed.json", "parallel.json")
	// In the guest package, every skip is a guest test's.
	require.Equal(t, 7, pol.summarizePkg(r.byPath[sample+"skips"]).guestSkips)
	// Elsewhere, only a skip that says SKIPPED is: TestSubtests/skipped
	// ("SKIPPED, NO KVM"), TestParallel/b ("SKIPPED: b is not installed").
	pol.guestPackage = guestPackage
	require.Equal(t, 4, pol.summarizePkg(r.byPath[sample+"skips"]).guestSkips)
	require.Equal(t, 1, pol.summarizePkg(r.byPath[sample+"pass"]).guestSkips)
	require.Equal(t, 1, pol.summarizePkg(r.byPath[sample+"parallel"]).guestSkips)
}

func TestOtherSkipsPassWhereKVMWorks(t *testing.T) {
	in := stream(t,
		event{Action: "start", Package: "p"},
		event{Action: "run", Package: "p", Test: "TestChown"},
		event{Action: "output", Package: "p", Test: "TestChown", Output: "    server_test.go:264: giving files to another user needs root\n"},
		event{Action: "skip", Package: "p", Test: "TestChown"},
		event{Action: "run", Package: "p", Test: "TestB"},
		event{Action: "pass", Package: "p", Test: "TestB"},
		event{Action: "pass", Package: "p"},
	)
	var out strings.Builder
	pol := policy{guestPackage: guestPackage, kvm: withKVM}
	require.Equal(t, 0, run(nil, false, true, pol, strings.NewReader(in), &out, &out))
	require.Equal(t, "=== testreport: per package, tests passed, failed, skipped (subtests and fuzz seeds apart), and why they skipped\n"+
		"ok    p  1 passed, 0 failed, 1 skipped\n"+
		"        1 skipped (TestChown): giving files to another user needs root\n"+
		"testreport: PASS: 1 package; tests 1 passed, 0 failed, 1 skipped; subtests 0 passed, 0 failed, 0 skipped\n", out.String())
}

func TestFailuresFailWithOrWithoutKVM(t *testing.T) {
	for _, kvm := range []kvmHost{withKVM, withoutKVM} {
		lines, ok := summarize(t, kvm, "mixed.json")
		require.False(t, ok)
		require.Contains(t, lines, "FAIL  example.com/sample/fails      1 passed, 2 failed, 0 skipped; subtests 1 passed, 1 failed, 0 skipped")
		require.Contains(t, lines, "        failed: TestFails, TestSubFails, TestSubFails/bad")
		require.Contains(t, lines, "no test files: example.com/sample/nofiles")
		require.True(t, strings.HasPrefix(last(lines),
			"testreport: FAIL: 2 tests failed; 3 packages broken (did not build, did not finish, or failed outside a test)"), last(lines))
	}
	for _, name := range []string{"panic.json", "timeout.json"} {
		lines, ok := summarize(t, withoutKVM, name)
		require.False(t, ok, name)
		require.True(t, strings.HasPrefix(last(lines), "testreport: FAIL: 1 test failed;"), last(lines))
	}
}

func TestRunExitStatus(t *testing.T) {
	pol := policy{guestPackage: guestPackage, kvm: withKVM}
	var out, errs strings.Builder
	short := filepath.Join("testdata", "kiln-short.json")
	require.Equal(t, 1, run([]string{short}, false, true, pol, nil, &out, &errs))
	require.Equal(t, 0, run([]string{short}, true, false, pol, nil, &out, &errs), "-summary=false only echoes")

	pol.kvm = withoutKVM
	require.Equal(t, 0, run([]string{short}, false, true, pol, nil, &out, &errs))
	out.Reset()
	require.Equal(t, 1, run([]string{short, "-"}, false, true, pol, strings.NewReader(""), &out, &errs))
	require.Contains(t, out.String(), "testreport: the standard input holds no test events (did go test run?)\n")
	require.Empty(t, errs.String())

	require.Equal(t, 2, run([]string{"testdata/no-such.json"}, false, true, pol, nil, &out, &errs))
	require.Equal(t, "testreport: open testdata/no-such.json: no such file or directory\n", errs.String())
}

func TestProbeKVM(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "kvm")
	require.Equal(t, kvmHost{device: missing, why: "open " + missing + ": no such file or directory"}, probeKVM(missing))
	// What opens read-write counts as usable.
	require.NoError(t, os.WriteFile(missing, nil, 0o600))
	require.Equal(t, kvmHost{device: missing, usable: true}, probeKVM(missing))
}
