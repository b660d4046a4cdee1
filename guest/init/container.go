package main

import (
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// An OCI container's process, as kiln's OCI runtime asks (docs/oci.md,
// guest/contract's Container): the guest is the container. init mounts
// its root file system and the directories behind its bind mounts from
// their 9P shares, builds its tree of mounts (containerfs.go), connects
// its stdio to the host over vsock, and reports ready on the control
// connection. At the host's start it runs the process chrooted into the
// root, as the container's user, in a session of its own; it relays the
// host's signals and terminal sizes while the process runs, and reports
// its exit status as for any command.
//
// The VM is the isolation boundary: the guest runs nothing but this
// container, so its host name, sysctls and limits are the container's,
// and the chroot only gives the process the container's view of files.

// quiesceTimeout bounds how long a checkpoint waits for a write of the
// process's output that the host does not take.
const quiesceTimeout = 10 * time.Second

// drainTimeout bounds how long init waits for the host to read a stream
// to its end once the process exited: a host that stopped reading must
// not keep the VM alive.
const drainTimeout = 60 * time.Second

// runContainer sets up and runs the container; it does not return.
func runContainer(c *contract.Container, quiet bool) {
	began := time.Now()
	ctl, err := dialControl(c.ControlPort)
	dialed := time.Since(began)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: container: %v\n", err)
		end(125, quiet)
	}
	ct, err := setupContainer(c)
	if err != nil {
		ctl.send(contract.Control{Op: contract.ControlError, Error: err.Error()})
		end(127, quiet)
	}
	started := make(chan struct{})
	handle := func(m contract.Control) {
		switch m.Op {
		case contract.ControlStart:
			select {
			case <-started:
			default:
				close(started)
			}
		case contract.ControlSignal:
			if m.ID != "" {
				ct.execs.signal(m)
			} else {
				ct.signal(m)
			}
		case contract.ControlWinsize:
			if m.ID != "" {
				ct.execs.resize(m)
			} else {
				ct.resize(m.Rows, m.Cols)
			}
		case contract.ControlNetwork:
			// Before the start, on this connection: the process finds
			// eth0 configured.
			applyNetwork(m.Net)
		case contract.ControlExec:
			if m.Exec != nil {
				go ct.exec(ctl, m.Exec)
			}
		case contract.ControlCheckpoint:
			reply := contract.Control{Op: contract.ControlQuiesced}
			if !ct.gate.close(quiesceTimeout) {
				reply.Error = fmt.Sprintf("the container's output was not read for %v", quiesceTimeout)
			}
			ctl.send(reply)
		case contract.ControlResume:
			if m.Time != 0 {
				setClock(m.Time)
			}
			if len(m.Entropy) > 0 {
				if err := addEntropy(m.Entropy); err != nil {
					fmt.Fprintf(os.Stderr, "kiln init: %v\n", err)
				}
			}
			ct.gate.open()
		}
	}
	go func() {
		for {
			ctl.serve(handle)
			// The connection ended: a checkpoint paused the VM, which
			// ended every vsock connection (the host's VMM ending ends
			// the VM too, so nothing else does). Connect again, in the
			// VM that goes on or the one restored from the checkpoint.
			if err := ctl.s.redial(); err != nil {
				fmt.Fprintf(os.Stderr, "kiln init: container: after a checkpoint: %v\n", err)
				return
			}
			if err := ct.redial(); err != nil {
				fmt.Fprintf(os.Stderr, "kiln init: container: after a checkpoint: %v\n", err)
			}
			ctl.send(contract.Control{Op: contract.ControlRestored, Pid: ct.proc.getPid()})
		}
	}()
	ready := contract.Control{Op: contract.ControlReady, Took: map[string]int64{
		"job": int64(timings.job), "apply": int64(timings.apply), "control": int64(dialed), "mounts": ct.mounts(), "stdio": int64(ct.stdio), "setup": int64(time.Since(began)),
	}}
	for part, ns := range ct.mountLaps {
		ready.Took["mounts: "+part] = ns
	}
	if err := ctl.send(ready); err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: container: report ready: %v\n", err)
		end(125, quiet)
	}
	<-started
	end(ct.run(ctl), quiet)
}

// container is a container set up and ready to start.
type container struct {
	c    *contract.Container
	exe  string      // the executable, as the process's root sees it
	proc process     // the process, once started
	std  [3]*os.File // the process's stdio: pipes' ends, or the terminal's slave
	tty  *os.File    // with a terminal: its master, and the stream to the host
	term *hostStream
	// Without a terminal: the streams to the host, stdin, stdout and
	// stderr, and init's ends of the pipes (stdio.go).
	streams [3]*hostStream
	pipes   [3]*os.File
	gate    *gate // holds the copies to the host while checkpointed

	reaper reaper // of the process, the execs and the orphans
	execs  execs  // the execs running (exec.go)

	stdio time.Duration // connecting the stdio streams to the host
	// mountLaps are the parts of building the container's file tree,
	// each timed (laps): its mounts, devices, masked and read-only paths
	// (for kiln's phase marks).
	mountLaps map[string]int64
}

// mounts is how long the container's file tree took to build.
func (ct *container) mounts() int64 {
	var n int64
	for _, ns := range ct.mountLaps {
		n += ns
	}
	return n
}

// laps times the parts of a piece of init's work, one after another,
// for kiln's phase marks: each lap is the time since the last.
type laps struct {
	last time.Time
	took map[string]int64 // nanoseconds, by part
}

func newLaps() *laps { return &laps{last: time.Now(), took: map[string]int64{}} }

// lap ends the part called name.
func (l *laps) lap(name string) {
	now := time.Now()
	l.took[name] += int64(now.Sub(l.last))
	l.last = now
}

// setupContainer does everything before the process runs.
func setupContainer(c *contract.Container) (*container, error) {
	l := newLaps()
	if err := mountShareAt(c.Root.Tag, containerRoot, contract.RootMountOptions); err != nil {
		return nil, fmt.Errorf("root file system: %w", err)
	}
	l.lap("root")
	mounted := map[string]bool{}
	for _, m := range c.Mounts {
		if m.Type == "bind" && !mounted[m.Tag] {
			if err := mountShareAt(m.Tag, path.Join(sharesDir, m.Tag), contract.ShareMountOptions); err != nil {
				return nil, err
			}
			// Shared, as a host's mounts are under systemd: a bind of
			// it is its peer, a slave bind gets it as its master, as
			// with runc; the container sees none of /kiln.
			if err := unix.Mount("", path.Join(sharesDir, m.Tag), "", unix.MS_SHARED, ""); err != nil {
				return nil, fmt.Errorf("make share %s shared: %w", m.Tag, err)
			}
			mounted[m.Tag] = true
		}
	}
	root, err := unix.Open(containerRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("root file system: %w", err)
	}
	defer unix.Close(root)
	l.lap("shares")
	if err := setupMounts(root, c.Mounts, l); err != nil {
		return nil, err
	}
	if len(c.Devices) > 0 {
		if err := makeDevices(root, c.Devices); err != nil {
			return nil, err
		}
	}
	l.lap("devices")
	if c.Hostname != "" {
		if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
			return nil, fmt.Errorf("set the host name: %w", err)
		}
	}
	for k, v := range c.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			if os.IsNotExist(err) {
				return nil, fmt.Errorf("sysctl %s: the guest kernel has no %s", k, p)
			}
			return nil, fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	l.lap("hostname, sysctl")
	if err := maskPaths(root, c.MaskedPaths); err != nil {
		return nil, err
	}
	l.lap("masked paths")
	if err := readonlyPaths(root, c.ReadonlyPaths); err != nil {
		return nil, err
	}
	l.lap("read-only paths")
	if fd, err := mkdirAllIn(root, c.Cwd); err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	} else {
		unix.Close(fd)
	}
	ct := &container{c: c, mountLaps: l.took}
	if ct.exe, err = lookPathIn(root, c.Args[0], c.Cwd, c.Env); err != nil {
		return nil, err
	}
	if c.RootPropagation != "" {
		if err := propagate(root, []string{c.RootPropagation}); err != nil {
			return nil, fmt.Errorf("linux.rootfsPropagation: %w", err)
		}
	}
	if c.Root.ReadOnly {
		if err := unix.MountSetattr(root, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return nil, fmt.Errorf("make the root read-only: %w", err)
		}
	}
	t := time.Now()
	if err := ct.connectStdio(root); err != nil {
		return nil, err
	}
	ct.stdio = time.Since(t)
	return ct, nil
}

// connectStdio connects the process's stdio to the host: three streams,
// or a terminal of the container's devpts relayed over one; init relays
// them (stdio.go).
func (ct *container) connectStdio(root int) error {
	base := ct.c.ControlPort
	ct.gate = newGate()
	if !ct.c.Terminal {
		for i, off := range []uint32{contract.PortStdin, contract.PortStdout, contract.PortStderr} {
			s, err := dialStream(base + off)
			if err != nil {
				return fmt.Errorf("stdio: %w", err)
			}
			ct.streams[i] = s
			r, w, err := os.Pipe()
			if err != nil {
				return fmt.Errorf("stdio: %w", err)
			}
			if i == 0 {
				ct.std[i], ct.pipes[i] = r, w
			} else {
				ct.std[i], ct.pipes[i] = w, r
			}
		}
		return nil
	}
	master, slave, err := openPty(root)
	if err != nil {
		return err
	}
	ct.tty = master
	ct.std = [3]*os.File{slave, slave, slave}
	if ct.term, err = dialStream(base + contract.PortStdin); err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	return nil
}

// redial connects the stdio streams again after a checkpoint.
func (ct *container) redial() error {
	for _, s := range append(ct.streams[:], ct.term) {
		if s == nil {
			continue
		}
		if err := s.redial(); err != nil {
			return fmt.Errorf("stdio: %w", err)
		}
	}
	return nil
}

// openPty opens a new pseudo-terminal in the container's own devpts (so
// the process finds its terminal under its /dev/pts), or the guest's if
// the container has none.
func openPty(root int) (master, slave *os.File, err error) {
	fd, err := openIn(root, "/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY)
	if err != nil {
		if fd, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err != nil {
			return nil, nil, fmt.Errorf("terminal: %w", err)
		}
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("terminal: unlock: %w", err)
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("terminal: open the peer: %w", errno)
	}
	return os.NewFile(uintptr(fd), "ptmx"), os.NewFile(s, "pts"), nil
}

// inContainer is how a process starts in the container, the container's
// own and each exec's: in its root, in dir, as u, with env (and the
// guest's settings, guestenv.go), std as its stdio, in a session of its
// own whose controlling terminal is its stdin when terminal is set.
func inContainer(dir string, env []string, std [3]*os.File, u contract.ContainerUser, terminal bool) *syscall.ProcAttr {
	return &syscall.ProcAttr{
		Dir:   dir,
		Env:   withGuestEnv(env),
		Files: []uintptr{std[0].Fd(), std[1].Fd(), std[2].Fd()},
		Sys: &syscall.SysProcAttr{
			Chroot: containerRoot,
			Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID,
				Groups: append([]uint32{}, u.AdditionalGIDs...)},
			Setsid:  true,
			Setctty: terminal,
			Ctty:    0,
		},
	}
}

// run starts the process and waits for it, relaying the terminal; it
// reports the start (once the exec succeeded) and the exit on ctl, and
// returns the exit status for the host (128+N for a death by signal N).
func (ct *container) run(ctl *control) int {
	began := time.Now()
	c := ct.c
	if err := ct.limit(); err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: container: %v\n", err)
		return 126
	}
	pid, exited, err := ct.reaper.spawn(func() (int, error) {
		return forkProcess(c, ct.exe, inContainer(c.Cwd, c.Env, ct.std, c.User, c.Terminal))
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: container: start %s: %v\n", c.Args[0], err)
		ctl.send(contract.Control{Op: contract.ControlExited, Status: 126})
		return 126
	}
	// ForkExec returns once the exec succeeded: the process exists, and
	// the host delivers the signals it held for it.
	ct.proc.started(pid)
	took := map[string]int64{"exec": int64(time.Since(began))}
	if err := ctl.send(contract.Control{Op: contract.ControlStarted, Pid: pid, Took: took}); err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: container: report the start: %v\n", err)
	}
	// The process holds its ends of the pipes, or the terminal: init's
	// copies close, so that the ends are seen.
	for _, f := range ct.std {
		f.Close()
	}
	var outs []*copier
	if c.Terminal {
		fromHost(ct.term, ct.tty, false)
		outs = append(outs, toHost(ct.tty, ct.term, ct.gate)) // until the terminal's last holder closed it
	} else {
		fromHost(ct.streams[0], ct.pipes[0], true)
		for i := 1; i < 3; i++ {
			outs = append(outs, toHost(ct.pipes[i], ct.streams[i], ct.gate))
		}
	}
	status := <-exited
	ct.proc.exited()
	ctl.send(contract.Control{Op: contract.ControlExited, Status: status})
	ct.finish(outs)
	return status
}

// limit applies, to init itself before it forks, what the process
// inherits of the whole process: resource limits and the umask. What
// belongs to a thread (capabilities, no_new_privs) forkProcess applies
// (caps.go).
func (ct *container) limit() error {
	c := ct.c
	for _, r := range c.Rlimits {
		// syscall.Setrlimit, so that Go does not restore its own
		// RLIMIT_NOFILE in the child.
		if err := syscall.Setrlimit(r.Resource, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return fmt.Errorf("rlimit %d: %w", r.Resource, err)
		}
	}
	umask := uint32(0o022)
	if c.User.Umask != nil {
		umask = *c.User.Umask
	}
	unix.Umask(int(umask))
	return nil
}

// reap waits for pid, reaping every other process that ends meanwhile, and
// returns its status as a shell would.
func reap(pid int) int {
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 125
		}
		if wpid != pid {
			continue
		}
		return waitStatus(ws)
	}
}

// finish ends the stdio streams once the process has exited, and waits
// until the host has read them to their end: what the process wrote must
// reach the host before the VM ends.
func (ct *container) finish(outs []*copier) {
	if ct.c.Terminal {
		finishStreams(true, ct.std, ct.term.current(), outs[0].done)
		return
	}
	for _, o := range outs {
		o.drain() // the pipes to their end: then the streams end
	}
	finishStreams(false, [3]*os.File{ct.pipes[0], ct.streams[1].current(), ct.streams[2].current()}, nil, nil)
}

// finishStreams ends a process's stdio streams (std, or with a terminal
// the stream term, once relayed closed) and waits for the host to have
// read them.
func finishStreams(terminal bool, std [3]*os.File, term *os.File, relayed <-chan struct{}) {
	if terminal {
		select {
		case <-relayed:
		case <-time.After(drainTimeout):
		}
		unix.Shutdown(int(term.Fd()), unix.SHUT_WR)
		drain(term, drainTimeout)
		return
	}
	std[0].Close()
	for _, f := range std[1:] {
		unix.Shutdown(int(f.Fd()), unix.SHUT_WR)
	}
	for _, f := range std[1:] {
		drain(f, drainTimeout)
	}
}

// signal relays a signal from the host. The host holds signals until
// the process started (ControlStarted) and sends none after its exit
// (ControlExited): one that comes outside that time, from a host that
// sent it as the process ended, has nothing to reach.
func (ct *container) signal(m contract.Control) {
	if err := ct.proc.signal(unix.Signal(m.Signal), m.All); err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: signal %d: %v\n", m.Signal, err)
	}
}

// process is the container's process, held by a pidfd from its start
// until it is reaped: a signal can never reach another process that
// reused its pid.
type process struct {
	mu    sync.Mutex
	pid   int
	pidfd int // -1 if the kernel gave none
	live  bool
}

// getPid is the process's pid, 0 before its start.
func (p *process) getPid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *process) started(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: pidfd of %d: %v\n", pid, err)
		fd = -1
	}
	p.mu.Lock()
	p.pid, p.pidfd, p.live = pid, fd, true
	p.mu.Unlock()
}

// exited is called once the process is reaped.
func (p *process) exited() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live && p.pidfd >= 0 {
		unix.Close(p.pidfd)
	}
	p.pid, p.pidfd, p.live = 0, -1, false
}

// signal sends sig to the process, or with all to every process of the
// guest but init (which runs nothing but the container). Outside the
// process's life it does nothing.
func (p *process) signal(sig unix.Signal, all bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.live {
		return nil
	}
	var err error
	switch {
	case all:
		err = unix.Kill(-1, sig)
	case p.pidfd >= 0:
		err = unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	default:
		err = unix.Kill(p.pid, sig) // not reaped yet: still its pid
	}
	if err == unix.ESRCH {
		err = nil // it exited and is not reaped yet
	}
	return err
}

// resize sets the terminal's size; the kernel sends SIGWINCH to its
// foreground process group.
func (ct *container) resize(rows, cols uint16) {
	if ct.tty == nil {
		return
	}
	unix.IoctlSetWinsize(int(ct.tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}
