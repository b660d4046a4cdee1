package oci

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Where a container's time goes, step by step: the marks behind kiln
// bench's breakdown of an engine's start (issue 21: the engine, kiln
// create, the restore, the guest's job, its mounts, the exec, the
// workload, the teardown).
//
// With KILN_PHASES naming a file (kiln's --phases global flag sets it;
// the VMM inherits it from create), each of a container's kiln processes
// appends a line of JSON there at each step it reaches: the container,
// the step, the host's wall-clock time, and durations the guest measured
// on its own clock. Every line is one write(2) to a file opened
// O_APPEND, so the processes share the file without a lock. Nothing is
// written without KILN_PHASES; a file that cannot be opened is a warning
// on stderr, never a failed container.
//
//	create ─► vmm ─► built ─► ready ─► created      kiln create, its VMM
//	start ─► started ─► exited ─► end                kiln start, the VMM
//	delete ─► deleted                                kiln delete

// PhasesEnv names the file the marks go to.
const PhasesEnv = "KILN_PHASES"

// The steps a container's kiln processes mark.
const (
	StepCreate = "create" // kiln create started
	StepVMM    = "vmm"    // the VMM process started
	StepBuilt  = "built"  // the VMM's VM is restored from the warm snapshot, about to run
	// StepReady: the guest set the container up. Took, as the guest timed
	// them: "control" (its control connection), "mounts", "stdio" (the
	// streams' connections) and "setup" (all of it, from the job's start).
	StepReady   = "ready"
	StepCreated = "created" // kiln create is about to return
	StepStart   = "start"   // kiln start started
	StepStarted = "started" // the guest's exec of the process succeeded (Took: "exec", the guest's own time)
	StepExited  = "exited"  // the process's exit status reached the VMM
	StepEnd     = "end"     // the VMM is about to exit
	StepDelete  = "delete"  // kiln delete started
	StepDeleted = "deleted" // kiln delete is about to return
)

// Mark is one line of the file.
type Mark struct {
	ID   string `json:"id"`
	Step string `json:"step"`
	At   int64  `json:"at"` // the host's time, Unix nanoseconds
	// Took are durations the guest measured, in nanoseconds, by name.
	Took map[string]int64 `json:"took,omitempty"`
}

// PhaseLog appends one container's marks; a nil *PhaseLog marks nothing.
type PhaseLog struct {
	f  *os.File
	id string
}

// OpenPhaseLog opens KILN_PHASES for container id's marks: nil when it is
// not set, or cannot be opened (said on stderr).
func OpenPhaseLog(id string) *PhaseLog {
	path := os.Getenv(PhasesEnv)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln: warning: %s: %v (no phase marks)\n", PhasesEnv, err)
		return nil
	}
	return &PhaseLog{f: f, id: id}
}

// Mark appends step, now (or at, if given), with the guest's durations.
func (p *PhaseLog) Mark(step string, took map[string]int64) { p.MarkAt(step, time.Now(), took) }

// MarkAt appends step at the time at.
func (p *PhaseLog) MarkAt(step string, at time.Time, took map[string]int64) {
	if p == nil {
		return
	}
	b, _ := json.Marshal(Mark{ID: p.id, Step: step, At: at.UnixNano(), Took: took}) // plain fields
	p.f.Write(append(b, '\n'))
}

// Close closes the file.
func (p *PhaseLog) Close() {
	if p != nil {
		p.f.Close()
	}
}

// ReadMarks reads a file of marks. A line that is not a mark (a file
// shared with something else) is an error.
func ReadMarks(path string) ([]Mark, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var marks []Mark
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var m Mark
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Step == "" {
			return nil, fmt.Errorf("%s: line %d is not a phase mark", path, n)
		}
		marks = append(marks, m)
	}
	return marks, sc.Err()
}

// Span is a named part of a container's launch → exit.
type Span struct {
	Name string
	Took time.Duration
}

// PhaseNames are the breakdown's phases, in order.
var PhaseNames = []string{"engine", "kiln create", "restore", "guest's job", "mounts", "exec", "workload", "teardown"}

// Breakdown splits an engine's launch → exit of one container (launch
// and exit are the engine command's, as the caller timed them) into
// PhaseNames, from the marks of the first container in marks:
//
//   - kiln create: create → vmm (the VMM's start) and ready → created;
//   - restore: vmm → built, the VMM restoring its VM;
//   - guest's job: built → ready but the mounts, init taking the job,
//     connecting to the host and setting the container up;
//   - mounts: the guest's own time for the container's mounts;
//   - exec: start → started, kiln start to the process's exec done;
//   - workload: started → exited;
//   - teardown: exited → end, the VMM ending, and delete → deleted if
//     it came before exit (podman run --rm deletes after it exits);
//   - engine: the rest, the engine's own work before, between and after.
func Breakdown(marks []Mark, launch, exit time.Time) ([]Span, error) {
	if len(marks) == 0 {
		return nil, errors.New("no phase marks")
	}
	id := marks[0].ID
	at := map[string]time.Time{}
	took := map[string]int64{}
	for _, m := range marks {
		if m.ID != id {
			continue
		}
		if _, seen := at[m.Step]; !seen {
			at[m.Step] = time.Unix(0, m.At)
		}
		for k, v := range m.Took {
			took[k] = v
		}
	}
	for _, s := range []string{StepCreate, StepVMM, StepBuilt, StepReady, StepCreated, StepStart, StepStarted, StepExited, StepEnd} {
		if _, ok := at[s]; !ok {
			return nil, fmt.Errorf("container %s: no %q mark", id, s)
		}
	}
	span := func(from, to string) time.Duration { return at[to].Sub(at[from]) }
	// The delete, if the engine's command waited for it: podman run --rm
	// leaves it to conmon's cleanup, after it exits.
	var deleting time.Duration
	del, ok1 := at[StepDelete]
	deleted, ok2 := at[StepDeleted]
	if ok1 && ok2 && !deleted.After(exit) {
		deleting = deleted.Sub(del)
	}
	mounts := time.Duration(took["mounts"])
	p := []Span{
		{"kiln create", span(StepCreate, StepVMM) + span(StepReady, StepCreated)},
		{"restore", span(StepVMM, StepBuilt)},
		{"guest's job", span(StepBuilt, StepReady) - mounts},
		{"mounts", mounts},
		{"exec", span(StepStart, StepStarted)},
		{"workload", span(StepStarted, StepExited)},
		{"teardown", span(StepExited, StepEnd) + deleting},
	}
	var kiln time.Duration
	for _, x := range p {
		if x.Took < 0 {
			return nil, fmt.Errorf("container %s: %s took %v: marks out of order", id, x.Name, x.Took)
		}
		kiln += x.Took
	}
	engine := exit.Sub(launch) - kiln
	if engine < 0 {
		return nil, fmt.Errorf("container %s: kiln's phases (%v) are longer than launch → exit (%v)", id, kiln, exit.Sub(launch))
	}
	return append([]Span{{"engine", engine}}, p...), nil
}
