package oci

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/ipc"
)

// VMMCommand is the hidden subcommand of kiln that is a container's VMM:
// `kiln [global flags] _oci-vmm STATEDIR`, started by kiln create with the
// container's stdio and a socket to create on its fd 3.
const VMMCommand = "_oci-vmm"

// Spawned is a container's VMM process, started and reporting the
// container created: Adopt it once it is recorded, or kill it.
type Spawned struct {
	Cmd  *exec.Cmd
	sock *os.File
}

// Spawn starts the VMM process for the state directory dir: the kiln
// binary exe, run with args (its global flags, then VMMCommand and dir),
// with stdio as its stdin, stdout and stderr, and waits until it reports
// the container created (ipc.Created), or fails. With a terminal, the VMM
// leads a session of its own whose controlling terminal is the slave: a
// change of the terminal's size then reaches it as SIGWINCH. With
// newNetns, the VMM starts in a new network namespace of its own, empty
// but for a loopback, where runc would put a container whose config.json
// asks for one: an engine that then configures the container's network
// in /proc/PID/ns/net (ctr run --cni) configures that namespace, never
// the host's.
func Spawn(exe string, args []string, stdio []*os.File, terminal, newNetns bool) (*Spawned, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start the VMM: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "vmm"), os.NewFile(uintptr(fds[1]), "create")
	// Descriptors this process inherited (an engine's sockets, a shell's
	// strays) must not reach the VMM, which lives as long as the
	// container: only its stdio and the socket do.
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	vmm := exec.Command(exe, args...)
	vmm.Stdin, vmm.Stdout, vmm.Stderr = stdio[0], stdio[1], stdio[2]
	vmm.ExtraFiles = []*os.File{theirs}
	vmm.Dir = "/" // hold no bundle directory busy
	vmm.Env = vmmEnv()
	vmm.SysProcAttr = &syscall.SysProcAttr{Setsid: terminal, Setctty: terminal, Ctty: 0}
	if newNetns {
		vmm.SysProcAttr.Cloneflags = unix.CLONE_NEWNET
	}
	if err := vmm.Start(); err != nil {
		mine.Close()
		theirs.Close()
		return nil, fmt.Errorf("start the VMM: %w", err)
	}
	theirs.Close()
	var c ipc.Created
	rerr := ipc.Read(mine, &c)
	if rerr == nil && c.Error == "" {
		return &Spawned{Cmd: vmm, sock: mine}, nil
	}
	mine.Close()
	werr := vmm.Wait()
	if rerr == nil {
		return nil, errors.New(c.Error)
	}
	if errors.Is(rerr, ipc.ErrClosed) {
		return nil, fmt.Errorf("the VMM process ended before the container was created (%v)", werr)
	}
	return nil, fmt.Errorf("the VMM process: %v", rerr)
}

// Adopt tells the VMM that the container is recorded: it lives on its own
// from now on.
func (s *Spawned) Adopt() error {
	defer s.sock.Close()
	return ipc.Write(s.sock, ipc.Adopted{})
}

// Kill ends a VMM that will not be adopted, and waits for it.
func (s *Spawned) Kill() {
	s.sock.Close() // the VMM ends its VM on its own when it sees this
	s.Cmd.Process.Kill()
	s.Cmd.Wait()
}

// vmmEnv is the VMM's environment: kiln's own, without the variables of
// conmon's that name descriptors the VMM does not have.
func vmmEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if len(kv) < 5 || kv[:5] != "_OCI_" {
			env = append(env, kv)
		}
	}
	return env
}
