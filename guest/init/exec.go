package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Execs: other processes in the running container (guest/contract's
// exec.go). Each is started as the container's process was, chrooted into
// the container's root, in a session of its own, with stdio streams of its
// own on the vsock ports the host's exec process listens on, and reaped by
// the container's reaper. The bounding set and no_new_privs are set on a
// thread of the exec's own, which the process is forked from and which
// ends with the exec's goroutine (it stays locked), so they never leak
// into init's other threads.

// execs are the running execs, by ID.
type execs struct {
	mu sync.Mutex
	m  map[string]*execProc
}

type execProc struct {
	proc process
	tty  *os.File // with a terminal: its master
}

func (e *execs) add(id string) (*execProc, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]*execProc{}
	}
	if _, ok := e.m[id]; ok {
		return nil, false
	}
	p := &execProc{}
	p.proc.pidfd = -1
	e.m[id] = p
	return p, true
}

func (e *execs) remove(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, id)
}

func (e *execs) get(id string) *execProc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[id]
}

// signal sends the host's signal to the exec m.ID.
func (e *execs) signal(m contract.Control) {
	if p := e.get(m.ID); p != nil {
		if err := p.proc.signal(unix.Signal(m.Signal), false); err != nil {
			fmt.Fprintf(os.Stderr, "kiln init: exec %s: signal %d: %v\n", m.ID, m.Signal, err)
		}
	}
}

// resize sets the size of the exec m.ID's terminal.
func (e *execs) resize(m contract.Control) {
	if p := e.get(m.ID); p != nil && p.tty != nil {
		unix.IoctlSetWinsize(int(p.tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: m.Rows, Col: m.Cols})
	}
}

// exec runs e and reports its start and exit on ctl.
func (ct *container) exec(ctl *control, e *contract.Exec) {
	// The thread is the exec's: see the comment at the top.
	runtime.LockOSThread()
	fail := func(status int, err error) {
		ctl.send(contract.Control{Op: contract.ControlExecExited, ID: e.ID, Status: status, Error: err.Error()})
	}
	if len(e.ID) == 0 || len(e.ID) > contract.MaxExecID || len(e.Args) == 0 {
		fail(126, fmt.Errorf("bad exec request"))
		return
	}
	ct.proc.mu.Lock()
	live := ct.proc.live
	ct.proc.mu.Unlock()
	if !live {
		fail(126, fmt.Errorf("the container's process is not running"))
		return
	}
	p, ok := ct.execs.add(e.ID)
	if !ok {
		fail(126, fmt.Errorf("an exec %q runs already", e.ID))
		return
	}
	defer ct.execs.remove(e.ID)

	root, err := unix.Open(containerRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail(126, fmt.Errorf("root file system: %w", err))
		return
	}
	defer unix.Close(root)
	cwd := e.Cwd
	if cwd == "" {
		cwd = "/"
	}
	exe, err := lookPathIn(root, e.Args[0], cwd, e.Env)
	if err != nil {
		status := 126
		if strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "no such file") {
			status = 127
		}
		fail(status, err)
		return
	}
	var std [3]*os.File
	var term *os.File
	if e.Terminal {
		master, slave, err := openPty(root)
		if err != nil {
			fail(126, err)
			return
		}
		defer master.Close()
		p.tty = master
		std = [3]*os.File{slave, slave, slave}
		if term, err = dialHost(e.Port + contract.PortStdin); err != nil {
			slave.Close()
			fail(126, fmt.Errorf("terminal: %w", err))
			return
		}
		defer term.Close()
	} else {
		for i, off := range []uint32{contract.PortStdin, contract.PortStdout, contract.PortStderr} {
			f, err := dialHost(e.Port + off)
			if err != nil {
				for _, g := range std[:i] {
					g.Close()
				}
				fail(126, fmt.Errorf("stdio: %w", err))
				return
			}
			std[i] = f
			defer f.Close()
		}
	}
	// The exec's privileges are set on a thread of its own, as the
	// container's process's are (caps.go), with the container's OOM
	// score adjustment.
	privs := &contract.Container{Args: e.Args, NoNewPrivileges: e.NoNewPrivileges,
		Capabilities: e.Capabilities, OOMScoreAdj: ct.c.OOMScoreAdj}
	pid, exited, err := ct.reaper.spawn(func() (int, error) {
		return forkProcess(privs, exe, inContainer(cwd, e.Env, std, e.User, e.Terminal))
	})
	if err != nil {
		if e.Terminal {
			std[0].Close()
		}
		fail(126, fmt.Errorf("start %s: %w", e.Args[0], err))
		return
	}
	p.proc.started(pid)
	ctl.send(contract.Control{Op: contract.ControlExecStarted, ID: e.ID, Pid: pid})
	relayed := make(chan struct{})
	if e.Terminal {
		std[0].Close() // the process holds the terminal
		go io.Copy(p.tty, term)
		go func() {
			io.Copy(term, p.tty)
			close(relayed)
		}()
	}
	status := <-exited
	p.proc.exited()
	ctl.send(contract.Control{Op: contract.ControlExecExited, ID: e.ID, Status: status})
	finishStreams(e.Terminal, std, term, relayed)
}
