package ipc

import (
	"fmt"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// SnapshotRequest asks a `kiln _snapshot` child to boot a VM of Shape
// and snapshot it into Dir when its init is ready for a job. Written by
// the parent (vmm/warm) on the child's stdin, read by the child.
type SnapshotRequest struct {
	Shape   config.Shape `json:"shape"`
	Dir     string       `json:"dir"`
	Seccomp seccomp.Mode `json:"seccomp"` // the filters the child's VM runs under
	// Verbose sends the guest's console and the kernel's boot messages
	// to the child's stderr.
	Verbose bool `json:"verbose,omitempty"`
}

// SnapshotReply is how the child's snapshot went: Error is empty on
// success; otherwise Code is the exit code kiln gives for that error (a
// bad kernel is 65, a crashed guest 71: cmd/kiln's table). Written by the
// child on its fd 3, read by the parent.
type SnapshotReply struct {
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// Failure is an error another kiln process reported, with the exit code
// it gave it: the parent passes both on as they are.
type Failure struct {
	What string // what the parent asked for: "take the warm snapshot"
	Msg  string
	Code int
}

func (f *Failure) Error() string { return fmt.Sprintf("%s: %s", f.What, f.Msg) }
