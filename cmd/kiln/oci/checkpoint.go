package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/machine"
)

// Checkpoint and restore of a running container (runc checkpoint and
// restore; podman container checkpoint and restore), with VM snapshots
// where runc uses CRIU. A container's whole state is its VM's: the
// guest's memory, its vCPUs and devices. So a checkpoint is a snapshot
// of the VM (vmm/machine's SaveSnapshot) taken while the process runs,
// and a restore is a VM built from it, whose process goes on where it
// was: its memory, its open files, its children, its pid.
//
//  1. kiln checkpoint asks the VMM (ipc.OpCheckpoint). The VMM refuses a
//     container whose VM holds what it cannot restore: an exec running
//     (its stdio are vsock streams of its own, which the pause ends), a
//     share the guest holds a removed file open on, or an xattr being
//     read (devices/share/snapshot.go).
//  2. The VMM asks the guest's init to hold the process's output
//     (ControlCheckpoint): what the process wrote before has left the
//     guest when init answers ControlQuiesced; what it writes meanwhile
//     waits in its stdio pipes, in the guest's memory.
//  3. The VMM pauses the VM, which ends its vsock connections, and saves
//     it to --image-path with the checkpoint's own record (Checkpoint).
//  4. Without --leave-running the VM ends and the VMM exits 0 (the
//     process did not fail: it lives on in the checkpoint); kiln
//     checkpoint returns once the VMM is gone, since the engine deletes
//     the container next. With it, the VM goes on: init connects again
//     and the output goes on.
//  5. kiln restore is kiln create from the checkpoint: the bundle is
//     translated again (its root file system, binds and network are the
//     restored container's own: the same paths, or an exported
//     container's imported under another name), the VMM builds the VM
//     from the image (CheckpointBuilder), init connects its streams again
//     and reports ControlRestored, and the VMM sends the container's
//     interfaces, the wall clock and fresh entropy (ControlResume). The
//     container is running.

// CheckpointFile is the checkpoint's own record, beside the snapshot's
// state and memory in the image directory.
const CheckpointFile = "kiln-checkpoint.json"

// Checkpoint is what kiln restore needs to know of a checkpoint beyond
// the VM.
type Checkpoint struct {
	ID       string    `json:"id"`       // the checkpointed container's
	Pid      int       `json:"pid"`      // its process's, in the guest
	Terminal bool      `json:"terminal"` // whether it has a terminal (process.terminal)
	Taken    time.Time `json:"taken"`
}

// checkpointedStatus is the VMM's exit status after a checkpoint that
// did not leave the container running: its process did not fail, it
// lives on in the checkpoint.
const checkpointedStatus = 0

// quiesceTimeout bounds how long the guest's init may take to hold the
// process's output (a guest on kvm-pvm is slow; init itself waits up to
// 10 s for a write the host does not take).
const quiesceTimeout = time.Minute

// checkpoint saves the running VM to dir (ipc.OpCheckpoint).
func (v *VMM) checkpoint(dir string, leaveRunning bool) error {
	if dir == "" || !filepath.IsAbs(dir) {
		return fmt.Errorf("the image path %q is not absolute", dir)
	}
	if ph := v.proc.Phase(); ph != PhaseRunning {
		return fmt.Errorf("%w (its process is %v)", ErrNotRunning, ph)
	}
	if n := v.execs.count(); n > 0 {
		return fmt.Errorf("the container has %d exec process(es) running (kiln exec): their streams would not survive the pause; let them end first", n)
	}
	v.ckptMu.Lock()
	defer v.ckptMu.Unlock()
	drainCkpt(v.ckpt)
	if err := v.link.Send(contract.Control{Op: contract.ControlCheckpoint}); err != nil {
		return err
	}
	m, err := v.awaitGuest(contract.ControlQuiesced, quiesceTimeout)
	if err == nil && m.Error != "" {
		err = errors.New(m.Error)
	}
	if err != nil {
		v.link.Send(contract.Control{Op: contract.ControlResume})
		return fmt.Errorf("the guest did not hold the container's output: %w", err)
	}
	if err := v.vm.Pause(); err != nil {
		v.link.Send(contract.Control{Op: contract.ControlResume})
		return err
	}
	saveErr := v.save(dir)
	if saveErr != nil || leaveRunning {
		// The VM goes on: its init connects again (the pause ended its
		// connections), and its output goes on once told.
		if err := v.vm.Resume(); err != nil {
			return fmt.Errorf("resume the VM: %w", err)
		}
		if err := v.afterPause(false); err != nil && saveErr == nil {
			return fmt.Errorf("after the pause: %w", err)
		}
		return saveErr
	}
	v.checkpointed.Store(true)
	v.vm.Stop()
	return nil
}

// save writes the paused VM and the checkpoint's record to dir.
func (v *VMM) save(dir string) error {
	build, err := machine.BuildID()
	if err != nil {
		return err
	}
	if _, err := v.vm.SaveSnapshot(dir, build); err != nil {
		return fmt.Errorf("save the VM: %w", err)
	}
	rec := Checkpoint{ID: filepath.Base(v.Dir), Pid: int(v.guestPid.Load()), Terminal: v.terminal, Taken: time.Now().UTC()}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, CheckpointFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the checkpoint's record: %w", err)
	}
	return nil
}

// afterPause waits for the guest's init to connect again after a pause,
// then tells it to go on: with the interfaces and a fresh clock and
// entropy in a restored VM.
func (v *VMM) afterPause(restored bool) error {
	m, err := v.awaitGuest(contract.ControlRestored, quiesceTimeout)
	if err != nil {
		return fmt.Errorf("the guest's init did not connect again: %w", err)
	}
	if m.Pid != 0 {
		v.guestPid.Store(int64(m.Pid))
	}
	return v.sendResume(restored)
}

// sendResume lets the guest's output go on after a checkpoint's pause;
// a restored VM gets the container's interfaces, the wall clock and
// fresh entropy first.
func (v *VMM) sendResume(restored bool) error {
	resume := contract.Control{Op: contract.ControlResume}
	if restored {
		if len(v.restoredNet) > 0 {
			if err := v.link.Send(contract.Control{Op: contract.ControlNetwork, Net: v.restoredNet}); err != nil {
				return err
			}
		}
		resume.Entropy = make([]byte, 32)
		if _, err := unix.Getrandom(resume.Entropy, 0); err != nil {
			return fmt.Errorf("entropy for the guest: %w", err)
		}
	}
	resume.Time = time.Now().UnixNano()
	return v.link.Send(resume)
}

// awaitGuest waits for the guest's message op (follow hands it over).
func (v *VMM) awaitGuest(op contract.ControlOp, timeout time.Duration) (contract.Control, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m := <-v.ckpt:
			if m.Op == op {
				return m, nil
			}
		case <-v.ended:
			return contract.Control{}, errors.New("the VM ended")
		case <-t.C:
			return contract.Control{}, fmt.Errorf("no %s from the guest within %v", op, timeout)
		}
	}
}

func drainCkpt(ch chan contract.Control) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// ReadCheckpoint reads the record of the checkpoint in dir.
func ReadCheckpoint(dir string) (*Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s holds no kiln checkpoint (no %s): %w", dir, CheckpointFile, err)
		}
		return nil, err
	}
	var c Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CheckpointFile), err)
	}
	return &c, nil
}

// CheckpointBuilder builds container VMs from the checkpoint in dir
// instead of the warm snapshot: the VM as it was, with the restored
// container's shares, socket path and tap.
func CheckpointBuilder(dir string) Builder {
	return func(cfg *config.Config, opt machine.Options) (VM, error) {
		m, err := machine.Restore(dir, cfg, opt)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}

// resumeRestored makes a restored container running: its process
// exists (it ran before the checkpoint), signals go to it, input flows,
// and the guest gets its interfaces, clock and entropy.
func (v *VMM) resumeRestored() error {
	if err := v.proc.Start(func() error { return v.sendResume(true) }); err != nil {
		return err
	}
	if s := v.link.streams; s != nil {
		s.started()
	}
	return v.proc.Started()
}
