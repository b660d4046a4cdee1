package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	if err := replaceable(dir); err != nil {
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

// replaceable checks that the image path may be replaced by the
// checkpoint (the snapshot is written beside it and renamed into its
// place): it does not exist, is empty (an engine made it), or holds an
// earlier kiln checkpoint. Anything else would be lost.
func replaceable(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist), err == nil && len(entries) == 0:
		return nil
	case err != nil:
		return fmt.Errorf("the image path: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CheckpointFile)); err != nil {
		return fmt.Errorf("the image path %s is not empty and holds no kiln checkpoint: its files would be replaced; give an empty or new directory", dir)
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
	if err := makeMountpoints(b); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
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

// makeMountpoints creates, in the bundle's root file system, the mount
// points the guest's init made there when it set the container up
// (guest/init/containerfs.go), as runc creates them: an empty file for a
// bind of a file, a directory for anything else. The restored guest holds
// 9P fids for them, which the share opens again by path
// (devices/share/snapshot.go); an engine's copy of the container's files
// (podman's export: its rootfs diff leaves mount points out) lacks them.
// Mounts below another mount's destination are in that mount, not in the
// root file system.
func makeMountpoints(b *Bundle) error {
	root, err := os.OpenRoot(b.Rootfs)
	if err != nil {
		return fmt.Errorf("the root file system: %w", err)
	}
	defer root.Close()
	var dests []string
	for _, m := range b.Spec.Mounts {
		dests = append(dests, filepath.Clean("/"+m.Destination))
	}
	for i, m := range b.Spec.Mounts {
		dest := dests[i]
		if dest == "/" || below(dest, dests[:i]) || below(dest, dests[i+1:]) {
			continue
		}
		rel := strings.TrimPrefix(dest, "/")
		if _, err := root.Lstat(rel); err == nil {
			continue
		}
		file := false
		if isBind(m) {
			if st, err := os.Stat(m.Source); err == nil && !st.IsDir() {
				file = true
			}
		}
		dir := rel
		if file {
			dir = filepath.Dir(rel)
		}
		if dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("mount point %s: %w", dest, err)
			}
		}
		if file {
			f, err := root.OpenFile(rel, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("mount point %s: %w", dest, err)
			}
			if f != nil {
				f.Close()
			}
		}
	}
	return nil
}

// below reports whether p is strictly below one of dirs.
func below(p string, dirs []string) bool {
	for _, d := range dirs {
		if d != "/" && d != p && strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// isBind reports whether m is a bind mount.
func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}
