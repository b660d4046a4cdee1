package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/ipc"
)

// Runtime is kiln as an OCI runtime: the operations runc's command line
// names (create, start, state, kill, delete, ps), on the containers under
// one state root. cmd/kiln parses the engine's flags into a Runtime and
// its options, calls these, and prints.
type Runtime struct {
	Store Store
	// Kernel and Initrd are the containers' guest; Exe is the kiln
	// binary their VMMs run; NoSeccomp runs them without filters.
	Kernel, Initrd, Exe string
	NoSeccomp           bool
	// SystemdCgroup is runc's --systemd-cgroup: linux.cgroupsPath is
	// systemd's slice:prefix:name (cgroup.go).
	SystemdCgroup bool
	// Log is the engine's --log: create writes there, as warnings, what
	// config.json asks that the VM does not honour.
	Log Log
	// Began is when this kiln process started: the first phase mark
	// (phases.go).
	Began time.Time
}

// CreateOptions are create's (and run's) flags.
type CreateOptions struct {
	ID            string
	Bundle        string // "" is the working directory
	PidFile       string
	ConsoleSocket string
	PreserveFDs   int
	// Foreground (kiln run without --detach): a terminal is the
	// caller's own, and no console socket is needed.
	Foreground bool
	// Stdio are the container's stdin, stdout and stderr: the engine's,
	// as kiln was given them.
	Stdio [3]*os.File
	// RestoreFrom, for kiln restore, is the checkpoint the VM is
	// restored from instead of the warm snapshot (checkpoint.go).
	RestoreFrom string
}

// firstMark is the time of this process's first phase mark, its start;
// a later one (kiln run's start, after its create) is the time it is
// made.
func (r *Runtime) firstMark() time.Time {
	t := r.Began
	r.Began = time.Time{}
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// Create creates the container and returns its VMM process. On any
// failure it leaves no process and no state behind.
func (r *Runtime) Create(o CreateOptions) (_ *Spawned, err error) {
	if err := ValidID(o.ID); err != nil {
		return nil, err
	}
	marks := OpenPhaseLog(o.ID)
	defer marks.Close()
	marks.MarkAt(StepCreate, r.firstMark(), nil)
	b, err := LoadBundle(o.Bundle)
	if err != nil {
		return nil, err
	}
	if o.PreserveFDs > 0 {
		return nil, fmt.Errorf("--preserve-fds: %w: host file descriptors cannot be handed to a process in a VM", ErrUnsupported)
	}
	terminal := b.Spec.Process.Terminal
	if terminal && o.ConsoleSocket == "" && !o.Foreground {
		return nil, errors.New("the container has a terminal (process.terminal), so create needs --console-socket")
	}
	for _, f := range []struct{ what, path string }{{"kernel", r.Kernel}, {"initramfs", r.Initrd}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("the containers' guest %s: %w (give --kernel/--initrd, or KILN_KERNEL/KILN_INITRD)", f.what, err)
		}
	}

	c, err := r.Store.Create(o.ID, b.Dir, b.Rootfs, b.Spec.Annotations)
	if err != nil {
		return nil, err
	}
	var vmm *Spawned
	var cg *Cgroup
	defer func() {
		if err != nil {
			if vmm != nil {
				vmm.Kill()
			}
			if cg != nil {
				cg.Remove()
			}
			c.TeardownNetwork() // the VMM is gone: undo what it plumbed
			c.Remove()
		}
	}()
	if err := os.Mkdir(c.EmptyDir(), 0o555); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if n := len(c.VsockPath()) + len("_65535"); n >= 108 {
		return nil, fmt.Errorf("state directory %s: its socket paths would be %d bytes, unix sockets take 107 (use a shorter --root)", c.Dir, n)
	}
	plan, err := Translate(b, c.EmptyDir())
	if err != nil {
		return nil, err
	}
	if err := plan.resolveNetwork(); err != nil {
		return nil, err
	}
	if cg, err = r.hostCgroup(plan, b.Spec.Linux); err != nil {
		return nil, err
	}
	if err := c.SavePlan(plan); err != nil {
		return nil, err
	}

	// The VMM's stdio are the container's: the engine's pipes as they
	// came, or a new terminal's slave, whose master goes to the engine.
	stdio := o.Stdio[:]
	var master *os.File
	if terminal && o.ConsoleSocket != "" {
		var slave *os.File
		if master, slave, err = OpenPty(); err != nil {
			return nil, err
		}
		defer master.Close()
		defer slave.Close()
		stdio = []*os.File{slave, slave, slave}
	}
	args := []string{VMMCommand, "--kernel", r.Kernel, "--initrd", r.Initrd}
	if r.NoSeccomp {
		args = append(args, "--no-seccomp")
	}
	if o.RestoreFrom != "" {
		args = append(args, "--restore", o.RestoreFrom)
	}
	if vmm, err = Spawn(r.Exe, append(args, c.Dir), stdio, terminal && o.ConsoleSocket != "", plan.NewNetns); err != nil {
		return nil, err
	}
	pid := vmm.Cmd.Process.Pid
	if c.PidStart, _, err = ProcStart(pid); err != nil {
		return nil, fmt.Errorf("the VMM process: %w", err)
	}
	c.Pid, c.Creator, c.CreatorStart = pid, 0, 0
	if err := c.Save(); err != nil {
		return nil, err
	}
	if h := plan.Hooks; h != nil {
		// The VM exists and its process waits for kiln start.
		for _, k := range []struct {
			kind  string
			hooks []specs.Hook
		}{{"prestart", h.Prestart}, {"createRuntime", h.CreateRuntime}} {
			if err := runHooks(k.kind, k.hooks, c.State().State); err != nil {
				vmm.Kill()
				vmm = nil
				r.poststop(c, h)
				return nil, err
			}
		}
	}
	if o.PidFile != "" {
		if err := WritePidFile(o.PidFile, c.Pid); err != nil {
			return nil, err
		}
	}
	if master != nil {
		if err := SendConsole(o.ConsoleSocket, master); err != nil {
			return nil, err
		}
	}
	if err := vmm.Adopt(); err != nil {
		return nil, fmt.Errorf("the VMM process: %w", err)
	}
	c.Unlock()
	// Created: the log's warnings cannot be taken for create's error.
	for _, n := range append(plan.Notes, plan.Ignored...) {
		if err := r.Log.Warn(o.ID + ": " + n); err != nil {
			break // the log is the engine's; the container runs regardless
		}
	}
	marks.Mark(StepCreated, nil)
	return vmm, nil
}

// Start lets a created container's process run.
func (r *Runtime) Start(id string) error {
	marks := OpenPhaseLog(id)
	defer marks.Close()
	marks.MarkAt(StepStart, r.firstMark(), nil)
	c, err := r.Store.Open(id, true)
	if err != nil {
		return err
	}
	defer c.Unlock()
	if st := c.Status(); st != specs.StateCreated {
		return fmt.Errorf("cannot start a container that is %s", st)
	}
	req := ipc.Request{Op: ipc.OpStart}
	plan, _ := LoadPlan(c.PlanPath())
	if plan != nil && plan.NewNetns {
		if req.Net, err = c.lateNetwork(); err != nil {
			return fmt.Errorf("start %s: %w", c.ID, err)
		}
	}
	if err := ipc.Call(c.ControlPath(), req); err != nil {
		return fmt.Errorf("start %s: %w", c.ID, err)
	}
	c.Started = true
	if err := c.Save(); err != nil {
		return err
	}
	if plan != nil && plan.Hooks != nil {
		if err := runHooks("poststart", plan.Hooks.Poststart, c.State().State); err != nil {
			r.Log.Warn(c.ID + ": " + err.Error()) // the process runs: a warning, as runc's
		}
	}
	return nil
}

// poststop runs the poststop hooks of a container that is gone; a
// failure is a warning in the log.
func (r *Runtime) poststop(c *Container, h *Hooks) {
	if h == nil || len(h.Poststop) == 0 {
		return
	}
	st := c.State().State
	st.Status, st.Pid = specs.StateStopped, 0
	if err := runHooks("poststop", h.Poststop, st); err != nil {
		r.Log.Warn(c.ID + ": " + err.Error())
	}
}

// State is the container's OCI state.
func (r *Runtime) State(id string) (State, error) {
	c, err := r.Store.Open(id, false)
	if err != nil {
		return State{}, err
	}
	return c.State(), nil
}

// Kill sends sig to the container: SIGKILL ends its VMM process, any
// other reaches the container's process in the guest (Process says when).
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, err := r.Store.Open(id, false)
	if err != nil {
		return err
	}
	switch c.Status() {
	case specs.StateStopped:
		return fmt.Errorf("%w: %s", ErrNotRunning, c.ID)
	case specs.StateCreating:
		return fmt.Errorf("container %s is being created", c.ID)
	}
	if sig == unix.SIGKILL {
		if err := unix.Kill(c.Pid, unix.SIGKILL); err != nil {
			return fmt.Errorf("kill %s: %w", c.ID, err)
		}
		return nil
	}
	err = ipc.Call(c.ControlPath(), ipc.Request{Op: ipc.OpSignal, Signal: int(sig), All: all})
	if err != nil && (errors.Is(err, ErrNotRunning) || c.Status() == specs.StateStopped) {
		// The process exited, or the VMM with it as kill asked.
		return fmt.Errorf("%w: %s", ErrNotRunning, c.ID)
	}
	if err != nil {
		return fmt.Errorf("kill %s: %w", c.ID, err)
	}
	return nil
}

// Delete removes a container's state, ending its VMM first if it is only
// created, or with force, running, and undoes what the VMM set up in the
// engine's network namespace, however the VMM ended (SIGKILL included).
// With force, a container that does not exist is no error (runc's
// answer, which podman's cleanup counts on).
func (r *Runtime) Delete(id string, force bool) (err error) {
	marks := OpenPhaseLog(id)
	defer marks.Close()
	marks.MarkAt(StepDelete, r.firstMark(), nil)
	defer func() {
		if err == nil {
			marks.Mark(StepDeleted, nil)
		}
	}()
	c, err := r.Store.Open(id, true)
	if errors.Is(err, ErrNotExist) && force {
		return nil
	}
	if err != nil {
		return err
	}
	switch st := c.Status(); st {
	case specs.StateRunning, StatePaused:
		if !force {
			c.Unlock()
			return fmt.Errorf("cannot delete container %s that is not stopped: %s (use --force)", c.ID, st)
		}
		fallthrough
	case specs.StateCreated:
		if err := endProcess(c.Pid, c.PidStart); err != nil {
			c.Unlock()
			return fmt.Errorf("delete %s: %w", c.ID, err)
		}
	}
	if err := c.TeardownNetwork(); err != nil {
		c.Unlock() // kept: a delete again tries again
		return fmt.Errorf("delete %s: %w", c.ID, err)
	}
	plan, _ := LoadPlan(c.PlanPath())
	if plan != nil && plan.Cgroup != nil {
		if err := plan.Cgroup.Remove(); err != nil {
			c.Unlock() // kept: a delete again tries again
			return fmt.Errorf("delete %s: %w", c.ID, err)
		}
	}
	if err := c.Remove(); err != nil {
		return err
	}
	if plan != nil {
		r.poststop(c, plan.Hooks)
	}
	return nil
}

// hostCgroup makes the container's host cgroup for linux.cgroupsPath,
// writes linux.resources into it, and records it and its notes in plan
// (cgroup.go). No cgroupsPath: no cgroup. Not root and not allowed to
// make it: no cgroup either, as runc runs rootless, and plan's size and
// notes become those of a VM without one.
func (r *Runtime) hostCgroup(plan *Plan, l *specs.Linux) (*Cgroup, error) {
	if l == nil || l.CgroupsPath == "" {
		return nil, nil
	}
	cg, err := HostCgroup(l.CgroupsPath, r.SystemdCgroup)
	if err != nil {
		return nil, err
	}
	if err := cg.Make(); err != nil {
		cg.Remove()
		if !errors.Is(err, fs.ErrPermission) || os.Geteuid() == 0 {
			return nil, err
		}
		size, notes, serr := SizeOf(l.Resources, ThisHost(), false)
		if serr != nil {
			return nil, serr
		}
		plan.Size, plan.Notes = size, append(notes, fmt.Sprintf("linux.cgroupsPath: not honoured: %v (kiln runs as uid %d); the VMM stays in the engine's cgroup", err, os.Geteuid()))
		return nil, nil
	}
	plan.Cgroup = cg
	notes, err := cg.ApplyLimits(l.Resources)
	plan.Notes = append(plan.Notes, notes...)
	return cg, err
}

// endProcess kills pid, if it is still the process that started at
// start, and waits until it is gone (a zombie is gone: it holds nothing).
func endProcess(pid int, start uint64) error {
	if !Alive(pid, start) {
		return nil
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !Alive(pid, start) {
			return nil
		}
	}
	return fmt.Errorf("process %d did not end", pid)
}

// Pids are the container's host processes: its VMM, while it lives.
func (r *Runtime) Pids(id string) ([]int, error) {
	c, err := r.Store.Open(id, false)
	if err != nil {
		return nil, err
	}
	pids := []int{}
	if live(c.Status()) {
		pids = append(pids, c.Pid)
	}
	return pids, nil
}
