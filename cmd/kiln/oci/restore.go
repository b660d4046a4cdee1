package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-vmm/kiln/vmm/ipc"
)

// kiln checkpoint and kiln restore, the runtime's side (checkpoint.go has
// the VMM's): runc's flags, VM snapshots where runc has CRIU's images.

// CheckpointOptions are kiln checkpoint's flags.
type CheckpointOptions struct {
	ID           string
	ImagePath    string // the VM is written here (runc's default: ./checkpoint)
	WorkPath     string // dump.log goes here ("" : the image path)
	LeaveRunning bool
	PreDump      bool   // refused: a VM snapshot has no pre-dump
	ParentPath   string // refused with it
}

// InventoryFile is CRIU's inventory image, whose presence podman checks
// before it restores a checkpoint. kiln writes a note there: its
// checkpoint is a VM snapshot (CheckpointFile, machine.StateFile).
const InventoryFile = "inventory.img"

// checkpointWait bounds how long kiln checkpoint waits for a VMM that
// saved its VM to exit.
const checkpointWait = 30 * time.Second

// Checkpoint saves a running container's VM to o.ImagePath; without
// LeaveRunning the container then stops, and Checkpoint returns once its
// VMM is gone.
func (r *Runtime) Checkpoint(o CheckpointOptions) error {
	if o.PreDump || o.ParentPath != "" {
		return fmt.Errorf("checkpoint: --pre-dump and --parent-path: %w: a kiln checkpoint is a whole VM snapshot, with no incremental dumps", ErrUnsupported)
	}
	dir, err := filepath.Abs(defaultString(o.ImagePath, "checkpoint"))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	c, err := r.Store.Open(o.ID, true)
	if err != nil {
		return err
	}
	defer c.Unlock()
	if st := c.Status(); st != specs.StateRunning {
		return &StateError{Op: "checkpoint", ID: o.ID, Status: st}
	}
	began := time.Now()
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := ipc.Call(c.ControlPath(), ipc.Request{Op: ipc.OpCheckpoint, Dir: dir, LeaveRunning: o.LeaveRunning}); err != nil {
		if errors.Is(err, ipc.ErrNotRunning) || c.Status() == specs.StateStopped {
			return &StateError{Op: "checkpoint", ID: o.ID, Status: specs.StateStopped}
		}
		return fmt.Errorf("checkpoint %s: %w", o.ID, err)
	}
	note := "kiln: this checkpoint is a VM snapshot (" + CheckpointFile + ", state.json, memory), not CRIU images; kiln restore reads it\n"
	if err := os.WriteFile(filepath.Join(dir, InventoryFile), []byte(note), 0o600); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	logLine(defaultString(o.WorkPath, dir), "dump.log", fmt.Sprintf("kiln: checkpointed %s to %s in %.2f s (leave running: %v)\n", o.ID, dir, time.Since(began).Seconds(), o.LeaveRunning))
	if o.LeaveRunning {
		return nil
	}
	// The engine deletes the container next: its VMM must be gone.
	deadline := time.Now().Add(checkpointWait)
	for c.Status() != specs.StateStopped {
		if time.Now().After(deadline) {
			return fmt.Errorf("checkpoint %s: saved to %s, but its VMM (pid %d) did not exit within %v", o.ID, dir, c.Pid, checkpointWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// RestoreOptions are kiln restore's flags.
type RestoreOptions struct {
	CreateOptions
	ImagePath string
	WorkPath  string
	Detach    bool
}

// Restore creates a container from the checkpoint in o.ImagePath and the
// bundle, running: its process goes on where the checkpoint left it.
// It returns the VMM, as Create does; the container is recorded as
// started.
func (r *Runtime) Restore(o RestoreOptions) (*Spawned, error) {
	dir, err := filepath.Abs(defaultString(o.ImagePath, "checkpoint"))
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	ck, err := ReadCheckpoint(dir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	b, err := LoadBundle(o.Bundle)
	if err != nil {
		return nil, err
	}
	if b.Spec.Process.Terminal != ck.Terminal {
		return nil, fmt.Errorf("restore: the checkpoint's container %s terminal, the bundle's process %s (process.terminal)", hasOrNot(ck.Terminal), hasOrNot(b.Spec.Process.Terminal))
	}
	began := time.Now()
	o.RestoreFrom = dir
	vmm, err := r.Create(o.CreateOptions)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	c, err := r.Store.Open(o.ID, true)
	if err == nil {
		c.Started = true
		err = c.Save()
		c.Unlock()
	}
	if err != nil {
		vmm.Kill()
		r.Delete(o.ID, true)
		return nil, fmt.Errorf("restore: %w", err)
	}
	logLine(defaultString(o.WorkPath, dir), "restore.log", fmt.Sprintf("kiln: restored %s from %s (checkpointed as %s) in %.2f s\n", o.ID, dir, ck.ID, time.Since(began).Seconds()))
	return vmm, nil
}

func hasOrNot(b bool) string {
	if b {
		return "has a"
	}
	return "has no"
}

func defaultString(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// logLine appends a line to the log file name in dir, as CRIU writes its
// dump.log and restore.log there for the engine; a log that cannot be
// written is no failure.
func logLine(dir, name, line string) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(line)
}
