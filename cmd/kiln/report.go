package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/trace"
)

// reporter writes kiln run --report: one JSON object a line (trace.Event)
// for each moment of the VM's life, as it happens. A nil reporter writes
// nothing.
type reporter struct {
	mu    sync.Mutex
	f     *os.File
	start time.Time
	err   error // the first write error
}

// openReport opens path for the report; "" means no report. path may be a
// pipe (/proc/self/fd/3) that a watching program reads.
func openReport(path string, start time.Time) (*reporter, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open report: %w", err)
	}
	return &reporter{f: f, start: start}, nil
}

// event writes one event that happened at.
func (r *reporter) event(e trace.Event, at time.Time) {
	if r == nil {
		return
	}
	e.AtNS = int64(at.Sub(r.start))
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.f.Write(append(b, '\n')); err != nil && r.err == nil {
		r.err = fmt.Errorf("write report: %w", err)
	}
}

// watch reports user space and the command's start as they happen, until
// done is closed.
func (r *reporter) watch(m *machine.Machine, done <-chan struct{}) {
	if r == nil {
		return
	}
	go func() {
		for _, w := range []struct {
			name string
			c    <-chan struct{}
		}{{"userspace", m.UserspaceReached()}, {"running", m.CommandStarted()}} {
			select {
			case <-w.c:
				r.event(trace.Event{Event: w.name}, time.Now())
			case <-done:
				return
			}
		}
	}()
}

// end writes the last event: how the VM ended, with kiln's exit code.
func (r *reporter) end(m *machine.Machine, res machine.Result, code int) {
	if r == nil {
		return
	}
	e := trace.Event{Event: "end", Reason: res.Reason.String(), Code: &code}
	if res.Err != nil {
		e.Error = res.Err.Error()
	}
	if res.HasStatus {
		status := res.ExitStatus
		e.ExitStatus = &status
	}
	p := res.Phases
	times := trace.Boot{Start: p.Start, FirstRun: p.FirstRun, Userspace: p.Userspace, Running: p.Running, End: p.End}.Phases()
	e.Phases = &times
	if report, ok := m.Stats(); ok {
		e.Exits = report.Counts()
	}
	for _, f := range res.Failures {
		e.Failures = append(e.Failures, trace.Failure{Device: f.Device, Where: f.Where, At: f.At.Sub(r.start), Reason: f.Reason.Error()})
	}
	r.event(e, p.End)
}

// close closes the report, returning the first error in writing it.
func (r *reporter) close() error {
	if r == nil {
		return nil
	}
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = fmt.Errorf("close report: %w", err)
	}
	return r.err
}
