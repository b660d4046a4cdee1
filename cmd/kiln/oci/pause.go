package oci

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-vmm/kiln/vmm/ipc"
)

// Pausing a container (runc pause and resume; podman pause and unpause).
// runc freezes the container's cgroup; a kiln container is a VM, so its
// VMM freezes the VM (vmm/machine's Freeze: the pause snapshots use, of
// the vCPUs alone): every vCPU leaves the guest and waits, so the guest
// runs no instruction, and lets them go on at resume, where they were.
// The virtio devices keep running: the socket device's connections, the
// container's stdio and control, are host sockets that a device pause
// would end; what the host sends meanwhile waits in the guest's receive
// buffers, and the interrupts for it in the interrupt controller, until
// the vCPUs run. The guest sees only a gap in time.
//
// state.json records the pause (Record.Paused), so kiln state says
// "paused" without asking the VMM. While paused:
//
//	kill SIGKILL  ends the VMM, and the VM with it, at once
//	kill SIG      is accepted, and reaches the process when the VM
//	              resumes: the guest's init, frozen, reads it then (a
//	              cgroup freezer too holds a signal until the thaw, but
//	              SIGKILL)
//	delete -f     ends the VMM (SIGKILL) and removes the container
//	start         refused: a created container that is paused starts
//	              once resumed
//
// Pause applies to a created or running container, resume to a paused
// one; anything else is a StateError, which cmd/kiln reports with an
// exit code of its own.

// StatePaused is the status of a paused container, as runc says it
// (the runtime specification's states stop at stopped).
const StatePaused specs.ContainerState = "paused"

// StateError refuses a command the container's status does not allow.
// Its words are runc's ("container not running", "container not paused").
type StateError struct {
	Op, ID string
	Status specs.ContainerState
}

func (e *StateError) Error() string {
	want := "running"
	if e.Op == "resume" {
		want = "paused"
	}
	return fmt.Sprintf("%s %s: container not %s (it is %s)", e.Op, e.ID, want, e.Status)
}

// Pause stops a created or running container's VM.
func (r *Runtime) Pause(id string) error {
	return r.setPaused(id, "pause", true)
}

// Resume lets a paused container's VM go on.
func (r *Runtime) Resume(id string) error {
	return r.setPaused(id, "resume", false)
}

// setPaused asks the VMM to pause (or resume) the VM and records it, with
// the container's lock held, so a pause, a resume and a delete of one
// container come one at a time.
func (r *Runtime) setPaused(id, op string, pause bool) error {
	c, err := r.Store.Open(id, true)
	if err != nil {
		return err
	}
	defer c.Unlock()
	st := c.Status()
	if pause && st != specs.StateCreated && st != specs.StateRunning || !pause && st != StatePaused {
		return &StateError{Op: op, ID: id, Status: st}
	}
	req, undo := ipc.OpPause, ipc.OpResume
	if !pause {
		req, undo = ipc.OpResume, ipc.OpPause
	}
	if err := ipc.Call(c.ControlPath(), ipc.Request{Op: req}); err != nil {
		if c.Status() == specs.StateStopped {
			return &StateError{Op: op, ID: id, Status: specs.StateStopped}
		}
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	c.Paused = pause
	if err := c.Save(); err != nil {
		// The record must say what the VM is: put it back as it was.
		ipc.Call(c.ControlPath(), ipc.Request{Op: undo})
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	return nil
}
