package warm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/ipc"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// SnapshotCommand is the hidden subcommand of kiln that takes a snapshot
// for a parent: `kiln _snapshot`, an ipc.SnapshotRequest on its stdin,
// the ipc.SnapshotReply on its fd 3.
const SnapshotCommand = "_snapshot"

// Child takes snapshots in a child process: the kiln binary Exe run as
// `kiln _snapshot`, whose stderr (what it says while it boots the guest)
// goes to Stderr.
type Child struct {
	Exe     string
	Stderr  io.Writer
	Seccomp seccomp.Mode // the filters the child's VM runs under
	Verbose bool         // the guest's console to Stderr
}

// NewChild is a Child of this very binary.
func NewChild(stderr io.Writer, mode seccomp.Mode, verbose bool) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("take the warm snapshot: find the kiln binary: %w", err)
	}
	return &Child{Exe: exe, Stderr: stderr, Seccomp: mode, Verbose: verbose}, nil
}

// Take boots a VM of shape s in the child and snapshots it into dir. A
// child that fails says why in its reply: the error is an *ipc.Failure
// with the exit code the child gave it.
func (c *Child) Take(s config.Shape, dir string) error {
	const what = "take the warm snapshot"
	req := ipc.SnapshotRequest{Shape: s, Dir: dir, Seccomp: c.Seccomp, Verbose: c.Verbose}
	var in strings.Builder
	if err := ipc.Write(&in, req); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer r.Close()
	cmd := exec.Command(c.Exe, SnapshotCommand)
	cmd.Stdin = strings.NewReader(in.String())
	cmd.Stdout, cmd.Stderr = c.Stderr, c.Stderr
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("%s: %w", what, err)
	}
	w.Close()
	var reply ipc.SnapshotReply
	rerr := ipc.Read(r, &reply)
	werr := cmd.Wait()
	switch {
	case rerr == nil && reply.Error == "" && werr == nil:
		return nil
	case rerr == nil && reply.Error != "":
		return &ipc.Failure{What: what, Msg: reply.Error, Code: reply.Code}
	}
	// The child ended without a word: it crashed, or a signal killed it.
	code, msg := 1, fmt.Sprint(werr)
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	if werr == nil {
		msg = fmt.Sprintf("the snapshot child said nothing: %v", rerr)
	}
	return &ipc.Failure{What: what, Msg: "the snapshot child ended: " + msg, Code: code}
}
