package oci

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/ipc"
)

// ExecCommand is the hidden subcommand of kiln that is a detached exec's
// process (`kiln _oci-exec`), started by kiln exec with the process's
// stdio and a socket on its fd 3, on which it reads an ipc.ExecJob and
// answers an ipc.ExecReport once the process started or failed to.
const ExecCommand = "_oci-exec"

// Exec runs o's process in its container and returns kiln exec's exit
// status: the process's without --detach, 0 once it started with it. An
// error is one before the process started; a *CodedError carries its
// exit code.
func (r *Runtime) Exec(o ExecOptions) (int, error) {
	c, err := r.Store.Open(o.ID, false)
	if err != nil {
		return 0, err
	}
	if st := c.Status(); st != specs.StateRunning {
		return 0, &CodedError{Code: ExitNotRunning, Err: fmt.Errorf("exec: container %s is %s, not running", c.ID, st)}
	}
	plan, err := LoadPlan(c.PlanPath())
	if err != nil {
		return 0, err
	}
	e, err := ExecSpec(&plan.Container, &o)
	if err != nil {
		return 0, err
	}
	job := ipc.ExecJob{Control: c.ControlPath(), Vsock: c.VsockPath(), Exec: e}
	stdio := o.Stdio
	if e.Terminal && o.ConsoleSocket != "" {
		master, slave, err := OpenPty()
		if err != nil {
			return 0, err
		}
		defer slave.Close()
		err = SendConsole(o.ConsoleSocket, master)
		master.Close()
		if err != nil {
			return 0, err
		}
		stdio = [3]*os.File{slave, slave, slave}
		job.Terminal = true
	} else if e.Terminal {
		_, err := unix.IoctlGetWinsize(int(stdio[0].Fd()), unix.TIOCGWINSZ)
		job.Terminal = err == nil
	}
	if !o.Detach && o.ConsoleSocket == "" {
		// kiln exec is the exec's process itself.
		p := &ExecProxy{Job: job, Stdin: stdio[0], Stdout: stdio[1], Stderr: stdio[2]}
		if o.PidFile != "" {
			p.Started = func(int) { WritePidFile(o.PidFile, os.Getpid()) }
		}
		return p.Run()
	}
	cmd, err := spawnExec(r.Exe, stdio, job)
	if err != nil {
		return 0, err
	}
	if o.PidFile != "" {
		if err := WritePidFile(o.PidFile, cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return 0, err
		}
	}
	if o.Detach {
		return 0, cmd.Process.Release() // the engine, a subreaper, waits for it
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// spawnExec starts the exec's process and waits until the guest started
// the process it stands for.
func spawnExec(exe string, stdio [3]*os.File, job ipc.ExecJob) (*exec.Cmd, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec: start its process: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "exec"), os.NewFile(uintptr(fds[1]), "kiln exec")
	defer mine.Close()
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) // as Spawn: nothing inherited goes on
	cmd := exec.Command(exe, ExecCommand)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Dir = "/"
	cmd.Env = vmmEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: job.Terminal, Ctty: 0}
	if err := cmd.Start(); err != nil {
		theirs.Close()
		return nil, fmt.Errorf("exec: start its process: %w", err)
	}
	theirs.Close()
	var rep ipc.ExecReport
	err = ipc.Write(mine, job)
	if err == nil {
		err = ipc.Read(mine, &rep)
	}
	if err == nil && rep.Error == "" {
		return cmd, nil
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("exec: its process: %w", err)
	}
	return nil, &CodedError{Code: rep.Code, Err: errors.New(rep.Error)}
}

// RunExecProcess is `kiln _oci-exec`: it reads its job on sock, runs the
// exec with its own stdio, reports the start on sock, and returns the
// process's exit status.
func RunExecProcess(sock *os.File) int {
	var job ipc.ExecJob
	if err := ipc.Read(sock, &job); err != nil || job.Exec == nil {
		fmt.Fprintf(os.Stderr, "kiln: %s is started by kiln exec\n", ExecCommand)
		return 1
	}
	p := &ExecProxy{Job: job, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Started: func(pid int) {
			ipc.Write(sock, ipc.ExecReport{Pid: pid})
			sock.Close()
		},
	}
	status, err := p.Run()
	var ce *CodedError
	if errors.As(err, &ce) {
		ipc.Write(sock, ipc.ExecReport{Error: ce.Error(), Code: ce.Code})
		return ce.Code
	}
	return status
}
