package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// guestPackage is the package of the tests that boot real guests: each of
// its tests needs a usable /dev/kvm.
const guestPackage = "github.com/kiln-vmm/kiln/cmd/kiln"

// modulePrefix is left out of package paths in the summary.
const modulePrefix = "github.com/kiln-vmm/kiln/"

// kvmHost says whether this host can run guests.
type kvmHost struct {
	device string
	usable bool
	why    string // when not usable: the error opening the device
}

// probeKVM opens the KVM device read-write, as kiln does: where that
// works, every guest test must run.
func probeKVM(device string) kvmHost {
	f, err := os.OpenFile(device, os.O_RDWR, 0)
	if err != nil {
		return kvmHost{device: device, why: err.Error()}
	}
	f.Close()
	return kvmHost{device: device, usable: true}
}

// policy decides what passes.
type policy struct {
	guestPackage string
	kvm          kvmHost
}

// isGuest says whether a test needs a real guest: every test of the guest
// package does, and any test that skipped saying "SKIPPED" first, the
// convention of the guest tests' helpers (kvmtest.MustHaveKVM: "SKIPPED,
// NO KVM: ...").
func (pol policy) isGuest(p *pkg, t *test) bool {
	return p.path == pol.guestPackage || t.lastSkipped != ""
}

// tally counts tests by their result.
type tally struct{ passed, failed, skipped int }

func (c *tally) add(r result) {
	switch r {
	case passed:
		c.passed++
	case failed:
		c.failed++
	case skipped:
		c.skipped++
	}
}

func (c *tally) addTally(o tally) {
	c.passed += o.passed
	c.failed += o.failed
	c.skipped += o.skipped
}

func (c tally) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.passed, c.failed, c.skipped)
}

// pkgSummary is what the summary says of one package. Its tests are the
// top-level ones, TestX, FuzzX, ExampleX; subtests (TestX/case, and a fuzz
// target's seeds) are counted apart, as a failed subtest fails its parent.
type pkgSummary struct {
	path            string
	tests, subtests tally
	failedNames     []string // the tests and subtests that failed
	skips           []skipGroup
	guestSkips      int    // guest tests and subtests that skipped
	problem         string // the package did not build, did not finish, or failed outside its tests
}

// skipGroup is the tests that skipped for one reason.
type skipGroup struct {
	reason string
	names  []string
}

func (pol policy) summarizePkg(p *pkg) pkgSummary {
	s := pkgSummary{path: p.path}
	group := map[string]int{} // reason -> index in s.skips
	for _, t := range p.tests {
		if t.topLevel() {
			s.tests.add(t.result)
		} else {
			s.subtests.add(t.result)
		}
		switch t.result {
		case failed:
			name := t.name
			if t.unfinished && p.timeout != "" {
				name += " (did not finish: " + p.timeout + ")"
			} else if t.unfinished {
				name += " (did not finish)"
			}
			s.failedNames = append(s.failedNames, name)
		case skipped:
			if pol.isGuest(p, t) {
				s.guestSkips++
			}
			why := t.reason()
			i, ok := group[why]
			if !ok {
				i = len(s.skips)
				group[why] = i
				s.skips = append(s.skips, skipGroup{reason: why})
			}
			s.skips[i].names = append(s.skips[i].names, t.name)
		}
	}
	switch {
	case p.buildError != "":
		s.problem = "did not build: " + p.buildError
	case !p.ended:
		s.problem = "did not finish: the stream ends before its result (was go test killed?)"
	case p.failed && len(s.failedNames) == 0:
		s.problem = "failed outside any test (TestMain, init, a crash)"
		if p.lastWords != "" {
			s.problem += "; its last words: " + p.lastWords
		}
	}
	return s
}

func (pol policy) pkgFails(s pkgSummary) bool {
	return s.problem != "" || s.tests.failed > 0 || s.subtests.failed > 0 ||
		(s.guestSkips > 0 && pol.kvm.usable)
}

// verdict is the outcome of a whole report.
type verdict struct {
	pkgs            int // packages with test files
	tests, subtests tally
	brokenPkgs      int // did not build, did not finish, or failed outside a test
	guestSkips      int
	problems        []string // the inputs' own: one with no events in it
}

func judge(sums []pkgSummary, problems []string) verdict {
	v := verdict{pkgs: len(sums), problems: problems}
	for _, s := range sums {
		v.tests.addTally(s.tests)
		v.subtests.addTally(s.subtests)
		v.guestSkips += s.guestSkips
		if s.problem != "" {
			v.brokenPkgs++
		}
	}
	return v
}

func (pol policy) passes(v verdict) bool {
	return v.tests.failed == 0 && v.subtests.failed == 0 && v.brokenPkgs == 0 &&
		len(v.problems) == 0 && (v.guestSkips == 0 || !pol.kvm.usable)
}

// summarize writes one line per package, with the reasons of its skips
// and the names of its failed tests under it, then the verdict as the
// last line; it returns whether the report passes. problems are the
// inputs' own, each a failure.
func (pol policy) summarize(w io.Writer, r *report, problems []string) bool {
	var sums []pkgSummary
	var noTestFiles []string
	width := 0
	pkgs := slices.SortedFunc(slices.Values(r.pkgs), func(a, b *pkg) int { return cmp.Compare(a.path, b.path) })
	for _, p := range pkgs {
		if p.noTestFiles {
			noTestFiles = append(noTestFiles, shortPath(p.path))
			continue
		}
		sums = append(sums, pol.summarizePkg(p))
		width = max(width, len(shortPath(p.path)))
	}
	fmt.Fprintln(w, "=== testreport: per package, tests passed, failed, skipped (subtests and fuzz seeds apart), and why they skipped")
	for _, s := range sums {
		status := "ok"
		if pol.pkgFails(s) {
			status = "FAIL"
		}
		line := fmt.Sprintf("%-4s  %-*s  %s", status, width, shortPath(s.path), s.tests)
		if s.subtests != (tally{}) {
			line += "; subtests " + s.subtests.String()
		}
		fmt.Fprintln(w, line)
		if s.problem != "" {
			fmt.Fprintf(w, "        %s\n", s.problem)
		}
		if len(s.failedNames) > 0 {
			fmt.Fprintf(w, "        failed: %s\n", strings.Join(s.failedNames, ", "))
		}
		for _, g := range s.skips {
			fmt.Fprintf(w, "        %s: %s\n", skippedNames(g.names), g.reason)
		}
		if s.guestSkips > 0 {
			fmt.Fprintf(w, "        %s\n", pol.guestSkipsSay(s.guestSkips))
		}
	}
	if len(noTestFiles) > 0 {
		fmt.Fprintf(w, "no test files: %s\n", strings.Join(noTestFiles, ", "))
	}
	if r.others > 0 {
		fmt.Fprintf(w, "testreport: %s of the input were not test events (-echo shows them as they are)\n", plural(r.others, "line", "lines"))
	}
	for _, p := range problems {
		fmt.Fprintf(w, "testreport: %s\n", p)
	}
	v := judge(sums, problems)
	fmt.Fprintln(w, pol.verdictLine(v))
	return pol.passes(v)
}

// guestSkipsSay says what n skipped guest tests mean on this host.
func (pol policy) guestSkipsSay(n int) string {
	if pol.kvm.usable {
		return fmt.Sprintf("%s skipped although %s is usable: that fails CI", guestTests(n), pol.kvm.device)
	}
	return pol.noKVM(n) + ": NOTHING ABOUT A REAL GUEST WAS TESTED"
}

func (pol policy) noKVM(n int) string {
	return fmt.Sprintf("%s skipped, and %s cannot be used here (%s)", guestTests(n), pol.kvm.device, pol.kvm.why)
}

// verdictLine is the summary's last line: PASS or FAIL, and what decided it.
func (pol policy) verdictLine(v verdict) string {
	totals := fmt.Sprintf("%s; tests %s; subtests %s", plural(v.pkgs, "package", "packages"), v.tests, v.subtests)
	if pol.passes(v) {
		if v.guestSkips > 0 {
			return "testreport: PASS, BUT NOTHING ABOUT A REAL GUEST WAS TESTED: " + pol.noKVM(v.guestSkips) + "; " + totals
		}
		return "testreport: PASS: " + totals
	}
	var why []string
	if v.tests.failed > 0 {
		why = append(why, plural(v.tests.failed, "test", "tests")+" failed")
	} else if v.subtests.failed > 0 { // go test fails a failed subtest's parent too: a stream of another making
		why = append(why, plural(v.subtests.failed, "subtest", "subtests")+" failed")
	}
	if v.brokenPkgs > 0 {
		why = append(why, plural(v.brokenPkgs, "package", "packages")+" broken (did not build, did not finish, or failed outside a test)")
	}
	if v.guestSkips > 0 && pol.kvm.usable {
		why = append(why, fmt.Sprintf("%s skipped although %s is usable", guestTests(v.guestSkips), pol.kvm.device))
	}
	why = append(why, v.problems...)
	return fmt.Sprintf("testreport: FAIL: %s; %s", strings.Join(why, "; "), totals)
}

// skippedNames says how many tests skipped, and which: all of them when
// they are few.
func skippedNames(names []string) string {
	const show = 3
	if len(names) <= show {
		return fmt.Sprintf("%d skipped (%s)", len(names), strings.Join(names, ", "))
	}
	return fmt.Sprintf("%d skipped (%s and %d more)", len(names), strings.Join(names[:show-1], ", "), len(names)-show+1)
}

func guestTests(n int) string { return plural(n, "guest test", "guest tests") }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func shortPath(path string) string {
	if s, ok := strings.CutPrefix(path, modulePrefix); ok {
		return s
	}
	return path
}
