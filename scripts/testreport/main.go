// Command testreport reads what go test -json writes (the event stream of
// go doc cmd/test2json) and says what ran and what did not. With -echo it
// prints the tests' output as it reads it, as go test -v shows it: each
// test's === RUN, its log lines and its --- PASS, FAIL or SKIP, live, one
// package at a time (echo.go). It ends with one line per package: its
// tests passed, failed and skipped (top-level tests; subtests and fuzz
// seeds apart), then, under it, the reason of each skip, identical reasons
// grouped, and the tests that failed; and a last line, the verdict.
//
//	go test -json ./devices/... | go run ./scripts/testreport -echo
//	go test -json ... | tee bin/test-unit.json | testreport -echo -summary=false   (make test, live)
//	testreport bin/test-unit.json bin/test-guest.json                            (make test's summary)
//
// The verdict is FAIL, and the exit status 1, when a test failed, a
// package did not build or did not finish (a timeout, a crash, a stream
// cut short), an input held no test events, or when a guest test skipped
// although /dev/kvm is usable: there, a skipped guest test is one that did
// not run where it could have, and CI must not look green. Where /dev/kvm
// cannot be used, guest tests may skip, and the summary says loudly that
// nothing about a real guest was tested. A guest test is any test of
// package cmd/kiln, and any test that skipped with a message starting
// "SKIPPED", as the guest tests' helpers say it (kvmtest.MustHaveKVM).
// /dev/kvm is usable when it opens read-write, as kiln opens it.
//
// Exit status: 0 PASS, 1 FAIL, 2 the inputs could not be read or the
// usage was wrong.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	echo := flag.Bool("echo", false, "print the tests' output as it is read, as go test -v shows it")
	summary := flag.Bool("summary", true, "end with the summary and the verdict, and exit 1 on FAIL")
	device := flag.String("kvm", "/dev/kvm", "the KVM `device`: where it opens read-write, guest tests must not skip")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: testreport [-echo] [-summary=false] [-kvm DEVICE] [FILE ...]   (go test -json output; none or - for stdin)")
		flag.PrintDefaults()
	}
	flag.Parse()
	pol := policy{guestPackage: guestPackage, kvm: probeKVM(*device)}
	os.Exit(run(flag.Args(), *echo, *summary, pol, os.Stdin, os.Stdout, os.Stderr))
}

// run reads the inputs named (stdin for none, or "-"), echoes and
// summarizes them, and returns the exit status.
func run(names []string, echo, summary bool, pol policy, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(names) == 0 {
		names = []string{"-"}
	}
	var out io.Writer
	if echo {
		out = stdout
	}
	r := newReport()
	var problems []string
	for _, name := range names {
		n, err := readInput(name, stdin, r, out)
		if err != nil {
			fmt.Fprintf(stderr, "testreport: %v\n", err)
			return 2
		}
		if n == 0 {
			problems = append(problems, fmt.Sprintf("%s holds no test events (did go test run?)", inputName(name)))
		}
	}
	r.finish()
	if !summary {
		return 0
	}
	if !pol.summarize(stdout, r, problems) {
		return 1
	}
	return 0
}

func inputName(name string) string {
	if name == "-" {
		return "the standard input"
	}
	return name
}

// readInput reads one stream into r, echoing it to echo when not nil, and
// returns how many events it held.
func readInput(name string, stdin io.Reader, r *report, echo io.Writer) (int, error) {
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		in = f
	}
	before := r.events
	if err := read(in, r, echo); err != nil {
		return 0, fmt.Errorf("read %s: %w", inputName(name), err)
	}
	return r.events - before, nil
}

// read adds each event of a go test -json stream to r and, when echo is
// not nil, writes the output it carries there as it comes: the build's
// errors and the tests' own output (=== RUN, log lines, --- PASS). A line
// that is not an event (a stray line on go test's standard output) is
// echoed as it is.
func read(in io.Reader, r *report, echo io.Writer) error {
	var ec *echoer
	if echo != nil {
		ec = newEchoer(echo)
	}
	br := bufio.NewReader(in)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if werr := take(line, r, ec); werr != nil {
				return werr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return ec.flush()
		case err != nil:
			return err
		}
	}
}

// take adds one line of a stream to r, and shows it with ec unless ec is
// nil.
func take(line []byte, r *report, ec *echoer) error {
	var e event
	if json.Unmarshal(line, &e) != nil || e.Action == "" {
		r.others++
		return ec.line(line)
	}
	r.add(e)
	return ec.event(e)
}
