package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// echoer prints the output of a go test -json stream as go test -v shows
// it. Two things differ in the stream:
//
//   - go test runs packages at once and their events interleave; -v shows
//     one package's output after another's. echoer shows one package live,
//     holds the others' output back, and shows it when that one ends.
//   - Where parallel tests interleave, -v puts "=== NAME  TestX" before a
//     line of another test than the last one; with -json the test binary
//     leaves those out (each event names its test), and echoer puts them
//     back.
//
// A nil *echoer shows nothing.
type echoer struct {
	w        io.Writer
	live     string                   // the package shown as its events come, "" for none
	held     map[string]*bytes.Buffer // the other packages' output
	queue    []string                 // their order
	ended    map[string]bool          // of those held, the ones that ended
	lastTest map[string]string        // by package: the test whose line was shown last
}

func newEchoer(w io.Writer) *echoer {
	return &echoer{w: w, held: map[string]*bytes.Buffer{}, ended: map[string]bool{}, lastTest: map[string]string{}}
}

// event shows what an event of the stream shows.
func (ec *echoer) event(e event) error {
	if ec == nil {
		return nil
	}
	pkg := e.Package
	end := e.Test == "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip")
	var text string
	switch e.Action {
	case "build-output":
		// A build's errors come before its package's events, and its
		// package may never start: they are shown as soon as no package
		// is live.
		pkg, end, text = "build "+e.ImportPath, true, e.Output
	case "output":
		text = e.Output
		framing := strings.HasPrefix(text, "=== ") || strings.HasPrefix(text, "--- ")
		if e.Test != "" && !framing && e.Test != ec.lastTest[pkg] {
			text = fmt.Sprintf("=== NAME  %s\n", e.Test) + text
		}
		ec.lastTest[pkg] = e.Test
	}
	if pkg == "" {
		return nil
	}
	if ec.live == "" && ec.held[pkg] == nil {
		ec.live = pkg
	}
	if pkg != ec.live {
		ec.hold(pkg, text, end)
		return nil
	}
	if _, err := io.WriteString(ec.w, text); err != nil {
		return err
	}
	if end {
		ec.live = ""
		return ec.next()
	}
	return nil
}

func (ec *echoer) hold(pkg, text string, end bool) {
	b := ec.held[pkg]
	if b == nil {
		b = new(bytes.Buffer)
		ec.held[pkg] = b
		ec.queue = append(ec.queue, pkg)
	}
	b.WriteString(text)
	if end {
		ec.ended[pkg] = true
	}
}

// next shows what is held, package by package, up to one that has not
// ended: that one is shown live from then on.
func (ec *echoer) next() error {
	for len(ec.queue) > 0 {
		pkg := ec.queue[0]
		ec.queue = ec.queue[1:]
		b := ec.held[pkg]
		delete(ec.held, pkg)
		if _, err := ec.w.Write(b.Bytes()); err != nil {
			return err
		}
		if !ec.ended[pkg] {
			ec.live = pkg
			return nil
		}
		delete(ec.ended, pkg)
	}
	return nil
}

// line shows a line of the stream that is not an event, as it is.
func (ec *echoer) line(l []byte) error {
	if ec == nil {
		return nil
	}
	_, err := ec.w.Write(l)
	return err
}

// flush shows all that is still held, at the end of the stream.
func (ec *echoer) flush() error {
	if ec == nil {
		return nil
	}
	for len(ec.queue) > 0 {
		ec.live = ""
		if err := ec.next(); err != nil {
			return err
		}
	}
	return nil
}
