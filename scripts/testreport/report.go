package main

import (
	"regexp"
	"strings"
)

// event is one line of go test -json (go doc cmd/test2json). A package's
// build errors come first, as build-output events of an ImportPath; the
// package's fail event then names that ImportPath in FailedBuild.
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string
	FailedBuild string
}

type result int

const (
	running result = iota // it started and has not ended (yet)
	passed
	failed
	skipped
)

// test is one test or subtest ("TestX/case") of a package.
type test struct {
	name   string
	result result
	// lastLog is the first line of the last message the test logged
	// (t.Log, t.Error, t.Skip all log), lastSkipped the last one that
	// starts with "SKIPPED".
	lastLog, lastSkipped string
	// unfinished: the stream ended, or the package's test binary exited,
	// before the test did (a timeout, a crash); it counts as failed.
	unfinished bool
}

func (t *test) topLevel() bool { return !strings.Contains(t.name, "/") }

// reason says why a skipped test skipped: the message t.Skip logged,
// which is the test's last one, unless a cleanup logged after it. Where a
// message starts with "SKIPPED" (the guest tests' helpers' convention) the
// last such one is the reason, wherever it is.
func (t *test) reason() string {
	switch {
	case t.lastSkipped != "":
		return t.lastSkipped
	case t.lastLog != "":
		return t.lastLog
	}
	return "(no reason given)"
}

// logLine matches the first line of a message a test logged, as the
// chatty output of go test -json shows it: "    file_test.go:12: text".
// Continuation lines of a message are indented further.
var logLine = regexp.MustCompile(`^ {4}[^ \t]+\.go:\d+: ?(.*)$`)

// pkg is what the stream said of one package.
type pkg struct {
	path   string
	tests  []*test // in the order they started
	byName map[string]*test
	// ended: its final pass, fail or skip event was read.
	ended, failed, noTestFiles bool
	// buildError is the first line of its build's errors, "build failed"
	// when the stream did not show them; empty when it built.
	buildError string
	// timeout is "test timed out after 1m0s" when the test binary's alarm
	// went off.
	timeout string
	// lastWords is the last line the test binary printed outside any test,
	// apart from go test's own PASS, FAIL and ok lines: why a package fails
	// with no failing test (TestMain, a leak check).
	lastWords string
}

func (p *pkg) test(name string) *test {
	t := p.byName[name]
	if t == nil {
		t = &test{name: name}
		p.byName[name] = t
		p.tests = append(p.tests, t)
	}
	return t
}

// report gathers the events of one or more streams.
type report struct {
	pkgs   []*pkg // in the order they appeared
	byPath map[string]*pkg
	// builds holds the first line of each failed build's errors, by
	// ImportPath: build output comes before the package's events.
	builds map[string]string
	events int // test2json events read
	others int // lines that were not test2json events
}

func newReport() *report {
	return &report{byPath: map[string]*pkg{}, builds: map[string]string{}}
}

func (r *report) pkg(path string) *pkg {
	p := r.byPath[path]
	if p == nil {
		p = &pkg{path: path, byName: map[string]*test{}}
		r.byPath[path] = p
		r.pkgs = append(r.pkgs, p)
	}
	return p
}

// add takes in one event.
func (r *report) add(e event) {
	r.events++
	if e.Action == "build-output" {
		line := strings.TrimSpace(e.Output)
		if _, seen := r.builds[e.ImportPath]; !seen && line != "" && !strings.HasPrefix(line, "#") {
			r.builds[e.ImportPath] = line
		}
		return
	}
	if e.Package == "" {
		return
	}
	p := r.pkg(e.Package)
	if e.Test == "" {
		r.addPackageEvent(p, e)
		return
	}
	t := p.test(e.Test)
	switch e.Action {
	case "output":
		line := strings.TrimRight(e.Output, "\r\n")
		if m := logLine.FindStringSubmatch(line); m != nil {
			t.lastLog = m[1]
			if strings.HasPrefix(m[1], "SKIPPED") {
				t.lastSkipped = m[1]
			}
		}
		noteTimeout(p, line)
	case "pass":
		t.result = passed
	case "fail":
		t.result = failed
	case "skip":
		t.result = skipped
	}
}

func (r *report) addPackageEvent(p *pkg, e event) {
	switch e.Action {
	case "output":
		line := strings.TrimRight(e.Output, "\r\n")
		noteTimeout(p, line)
		if !goTestsOwnLine(line) {
			p.lastWords = line
		}
	case "pass":
		p.ended = true
	case "skip":
		p.ended, p.noTestFiles = true, true
	case "fail":
		p.ended, p.failed = true, true
		if e.FailedBuild != "" {
			p.buildError = r.builds[e.FailedBuild]
			if p.buildError == "" {
				p.buildError = "build failed"
			}
		}
	}
	if p.ended {
		// The test binary has exited: what is still running never ends.
		for _, t := range p.tests {
			if t.result == running {
				t.result, t.unfinished = failed, true
			}
		}
	}
}

// noteTimeout remembers the panic of the test binary's alarm (-timeout).
func noteTimeout(p *pkg, line string) {
	if s, ok := strings.CutPrefix(line, "panic: test timed out after "); ok {
		p.timeout = "test timed out after " + s
	}
}

// goTestsOwnLine: a line go test prints for a package itself, not one of
// the test binary's words.
func goTestsOwnLine(line string) bool {
	return strings.TrimSpace(line) == "" || line == "PASS" || line == "FAIL" ||
		strings.HasPrefix(line, "ok  \t") || strings.HasPrefix(line, "FAIL\t") ||
		strings.HasPrefix(line, "?   \t") || strings.HasPrefix(line, "coverage: ") ||
		strings.HasPrefix(line, "testing: warning: no tests to run")
}

// finish ends what the streams left running: a stream that stops in the
// middle of a package (go test killed, a lost CI job) leaves its running
// tests failed and the package unended.
func (r *report) finish() {
	for _, p := range r.pkgs {
		for _, t := range p.tests {
			if t.result == running {
				t.result, t.unfinished = failed, true
			}
		}
	}
}
