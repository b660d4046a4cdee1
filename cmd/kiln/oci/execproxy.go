package oci

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/ipc"
)

// ExecProxy is the host process that stands for an exec'd process: it
// holds the exec's connection to the container's VMM (ipc.Exec), listens
// for the process's stdio on vsock ports of its own, copies them to and
// from its own stdio, sends the signals it receives to the process, and
// gives its exit status.
//
// Its ports: an exec takes four host vsock ports from ExecPortBase on
// (the guest connects to Port+PortStdin, +PortStdout, +PortStderr), the
// first block whose unix socket PATH_port does not exist yet, so that
// many execs at once each have their own. The sockets are removed when
// the exec ends.
type ExecProxy struct {
	Job    ipc.ExecJob
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Started is called once the guest started the process, with its
	// pid in the guest.
	Started func(pid int)
}

// ExecPortBase is the first host vsock port of the execs' stdio;
// execSlots blocks of four follow it.
const (
	ExecPortBase = ControlPort + 64
	execSlots    = 4096
)

// ErrExecEnded says the container ended while the exec ran: its process
// went with the VM.
var ErrExecEnded = errors.New("the container ended while the exec ran")

// outputWait bounds the wait for the last of the process's output once
// it exited.
const outputWait = 10 * time.Second

// Run runs the exec to its end and returns its process's exit status. An
// error is one before the process started (a *CodedError), or
// ErrExecEnded.
func (p *ExecProxy) Run() (int, error) {
	e := p.Job.Exec
	lns, err := p.listen()
	if err != nil {
		return 0, err
	}
	std := relayStdio(lns, p.Stdin, p.Stdout, p.Stderr)
	defer std.close() // removes the socket files

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)

	conn, err := ipc.Exec(p.Job.Control, e)
	if err != nil {
		return 0, &CodedError{Code: 1, Err: fmt.Errorf("exec: %w", err)}
	}
	defer conn.Close()
	ev, err := conn.Next()
	switch {
	case errors.Is(err, ipc.ErrNotRunning):
		return 0, &CodedError{Code: ExitNotRunning, Err: errors.New("exec: the container is not running")}
	case err != nil:
		return 0, &CodedError{Code: 1, Err: fmt.Errorf("exec: %w", err)}
	case ev.Exited: // it never ran
		return 0, &CodedError{Code: ev.Status, Err: fmt.Errorf("exec: %s", ev.Error)}
	}
	std.started()
	if p.Started != nil {
		p.Started(ev.Pid)
	}
	if p.Job.Terminal {
		p.resize(conn)
	}
	go func() {
		for s := range sigs {
			sig := s.(syscall.Signal)
			if sig == unix.SIGWINCH && p.Job.Terminal {
				p.resize(conn)
				continue
			}
			conn.Signal(int(sig))
		}
	}()
	for {
		ev, err := conn.Next()
		if err != nil {
			return 128 + int(unix.SIGKILL), ErrExecEnded
		}
		if ev.Exited {
			std.wait(outputWait)
			return ev.Status, nil
		}
	}
}

// listen takes the first free block of ports and listens on its sockets.
func (p *ExecProxy) listen() ([]net.Listener, error) {
	n := 3
	if p.Job.Exec.Terminal {
		n = 1
	}
	for slot := uint32(0); slot < execSlots; slot++ {
		base := ExecPortBase + 4*slot
		var lns []net.Listener
		for i := 0; i < n; i++ {
			ln, err := net.Listen("unix", p.Job.Vsock+"_"+strconv.Itoa(int(base+contract.PortStdin+uint32(i))))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == n {
			p.Job.Exec.Port = base
			return lns, nil
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	return nil, &CodedError{Code: 1, Err: errors.New("exec: no free vsock ports for the process's stdio")}
}

// resize sends the size of the terminal on stdin to the process's.
func (p *ExecProxy) resize(conn *ipc.ExecConn) {
	if rows, cols, ok := terminalSize(p.Stdin); ok {
		conn.Resize(rows, cols)
	}
}
