package contract

import (
	"errors"
	"fmt"
	"path"
	"time"
)

// Ready is when an app started by a ready-app snapshot's job (Job.Ready)
// is ready to be snapshotted: kiln snapshot --ready-port, --ready-file
// or --ready-after. Exactly one of its fields is set.
//
// The wait is init's, in the guest: it starts the job's command, reports
// EventRunning, and checks the condition until it holds (or the command
// exits, which ends the VM with its status). Then it writes
// EventAppReady and reads a job again, as at EventReady: kiln pauses the
// VM at that write and snapshots it, so every VM restored from it resumes
// with the app running and init reading the job its own VMM hands it,
// whose entropy, time and network interfaces init applies (the rest of
// that job is ignored) before it reports EventRunning again and waits for
// the app's exit.
type Ready struct {
	// Port: a TCP socket in the guest listens on this port (any local
	// address), as /proc/net/tcp shows it. init connects to nothing: the
	// app sees no connection of kiln's.
	Port int `json:"port,omitempty"`
	// File: this absolute path exists in the guest.
	File string `json:"file,omitempty"`
	// After: this long has passed since the command started, on the
	// guest's monotonic clock.
	After time.Duration `json:"after,omitempty"`
}

// ErrBadReady says a ready condition is not one: none or several of its
// fields set, or a value out of range.
var ErrBadReady = errors.New("bad ready condition")

// Check reports whether r is a condition init can wait for: one field
// set, a port from 1 to 65535, an absolute file path, a positive time.
func (r Ready) Check() error {
	n := 0
	if r.Port != 0 {
		n++
		if r.Port < 1 || r.Port > 65535 {
			return fmt.Errorf("%w: port %d is out of range (1 to 65535)", ErrBadReady, r.Port)
		}
	}
	if r.File != "" {
		n++
		if !path.IsAbs(r.File) || len(r.File) > 4096 {
			return fmt.Errorf("%w: %q is not an absolute path in the guest", ErrBadReady, r.File)
		}
	}
	if r.After != 0 {
		n++
		if r.After < 0 {
			return fmt.Errorf("%w: a negative time (%v)", ErrBadReady, r.After)
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: give one of a port, a file and a time (%d given)", ErrBadReady, n)
	}
	return nil
}

// String says what the condition waits for: "port 8080 listening".
func (r Ready) String() string {
	switch {
	case r.Port != 0:
		return fmt.Sprintf("port %d listening", r.Port)
	case r.File != "":
		return r.File + " written"
	}
	return fmt.Sprintf("%v passed", r.After)
}

// NotMet says what did not happen: "port 8080 not listening".
func (r Ready) NotMet() string {
	switch {
	case r.Port != 0:
		return fmt.Sprintf("port %d not listening", r.Port)
	case r.File != "":
		return r.File + " not written"
	}
	return fmt.Sprintf("%v not passed", r.After)
}
