package machine

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/kiln-vmm/kiln/vmm/trace"
)

// Reporter writes kiln run --report: one JSON object a line (trace.Event)
// for each moment of the VM's life, as it happens, for programs that
// read kiln's figures (kiln bench). A nil Reporter writes nothing.
type Reporter struct {
	mu    sync.Mutex
	f     *os.File
	start time.Time
	err   error // the first write error
}

// OpenReport opens path for the report; "" means no report. path may be a
// pipe (/proc/self/fd/3) that a watching program reads.
func OpenReport(path string, start time.Time) (*Reporter, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open report: %w", err)
	}
	return &Reporter{f: f, start: start}, nil
}

// event writes one event that happened at.
func (r *Reporter) event(e trace.Event, at time.Time) {
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

// Watch reports user space and the command's start as they happen, until
// done is closed.
func (r *Reporter) Watch(m *Machine, done <-chan struct{}) {
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

// End writes the last event: how the VM ended, with kiln's exit code.
func (r *Reporter) End(m *Machine, res Result, code int) {
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

// Close closes the report, returning the first error in writing it.
func (r *Reporter) Close() error {
	if r == nil {
		return nil
	}
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = fmt.Errorf("close report: %w", err)
	}
	return r.err
}
