package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

// kiln create: the container becomes a VMM process, forked here (kiln
// itself, run again as `kiln _oci-vmm STATEDIR`), which builds the VM from
// the warm snapshot, lets the guest's init set the container up, and
// holds it there until kiln start. create returns once the VMM reports
// the container created, or its error; the VMM's pid goes to --pid-file.
// The engine (conmon, the containerd shim) is a subreaper, so when
// create exits, the VMM becomes its child, and the VMM's exit status is
// the container's. On any failure create leaves no process and no state
// behind.

// createOptions are create's and run's flags.
type createOptions struct {
	id            string
	bundle        string
	pidFile       string
	consoleSocket string
	preserveFDs   int
	detach        bool // run only
}

func createFlags(name string, o *createOptions) *pflag.FlagSet {
	fs := ociFlags(name)
	fs.StringVarP(&o.bundle, "bundle", "b", "", "the bundle directory (default: the working directory)")
	fs.StringVar(&o.pidFile, "pid-file", "", "write the container's host process ID here")
	fs.StringVar(&o.consoleSocket, "console-socket", "", "send the master of the container's terminal to this unix socket")
	fs.IntVar(&o.preserveFDs, "preserve-fds", 0, "pass this many more file descriptors to the container (refused: a VM cannot take host files)")
	fs.Bool("no-pivot", false, "accepted for runc's callers")
	fs.Bool("no-new-keyring", false, "accepted for runc's callers")
	return fs
}

func ociCreateCmd(g *ociGlobals, args []string) error {
	var o createOptions
	pos, err := parseOCI(createFlags("create", &o), args, 1, 1)
	if err != nil {
		return err
	}
	o.id = pos[0]
	vmm, err := ociCreate(g, &o, false)
	if err != nil {
		return err
	}
	vmm.Process.Release()
	return nil
}

// ociRunCmd is runc's run: create and start, then, unless --detach, wait
// for the container and exit with its status, and delete it.
func ociRunCmd(g *ociGlobals, args []string) int {
	var o createOptions
	fs := createFlags("run", &o)
	fs.BoolVarP(&o.detach, "detach", "d", false, "return once the container started")
	fs.Bool("keep", false, "accepted for runc's callers")
	fs.Bool("no-subreaper", false, "accepted for runc's callers")
	pos, err := parseOCI(fs, args, 1, 1)
	if err != nil {
		return ociFail(g, err)
	}
	o.id = pos[0]
	vmm, err := ociCreate(g, &o, !o.detach)
	if err != nil {
		return ociFail(g, err)
	}
	if err := ociStart(g, []string{o.id}); err != nil {
		vmm.Process.Kill()
		vmm.Wait()
		ociDelete(g, []string{"--force", o.id})
		return ociFail(g, err)
	}
	if o.detach {
		vmm.Process.Release()
		return 0
	}
	// The signals a terminal sends reach the VMM too (one process
	// group), which relays them to the container.
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	err = vmm.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		return ociFail(g, err)
	}
	if err := ociDelete(g, []string{"--force", o.id}); err != nil {
		return ociFail(g, err)
	}
	return code
}

// ociCreate creates the container and returns its VMM process. With
// foreground (kiln run), a terminal is the caller's own and no console
// socket is needed.
func ociCreate(g *ociGlobals, o *createOptions, foreground bool) (_ *exec.Cmd, err error) {
	if err := oci.ValidID(o.id); err != nil {
		return nil, err
	}
	b, err := oci.LoadBundle(o.bundle)
	if err != nil {
		return nil, err
	}
	if o.preserveFDs > 0 {
		return nil, fmt.Errorf("--preserve-fds: %w: host file descriptors cannot be handed to a process in a VM", oci.ErrUnsupported)
	}
	terminal := b.Spec.Process.Terminal
	if terminal && o.consoleSocket == "" && !foreground {
		return nil, errors.New("the container has a terminal (process.terminal), so create needs --console-socket")
	}
	for _, f := range []struct{ what, path string }{{"kernel", g.kernel}, {"initramfs", g.initrd}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("the containers' guest %s: %w (give --kernel/--initrd, or KILN_KERNEL/KILN_INITRD)", f.what, err)
		}
	}

	c, err := g.store().Create(o.id, b.Dir, b.Rootfs, b.Spec.Annotations)
	if err != nil {
		return nil, err
	}
	var vmm *exec.Cmd
	defer func() {
		if err != nil {
			if vmm != nil && vmm.Process != nil {
				vmm.Process.Kill()
				vmm.Wait()
			}
			c.Remove()
		}
	}()
	if err := os.Mkdir(c.EmptyDir(), 0o555); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if n := len(c.VsockPath()) + len("_65535"); n >= 108 {
		return nil, fmt.Errorf("state directory %s: its socket paths would be %d bytes, unix sockets take 107 (use a shorter --root)", c.Dir, n)
	}
	plan, err := oci.Translate(b, c.EmptyDir())
	if err != nil {
		return nil, err
	}
	if err := c.SavePlan(plan); err != nil {
		return nil, err
	}

	// The VMM's stdio are the container's: the engine's pipes as they
	// came, or a new terminal's slave, whose master goes to the engine.
	stdio := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	var master *os.File
	if terminal && o.consoleSocket != "" {
		var slave *os.File
		if master, slave, err = oci.OpenPty(); err != nil {
			return nil, err
		}
		defer master.Close()
		defer slave.Close()
		stdio = []*os.File{slave, slave, slave}
	}
	vmm, err = startVMM(g, c.Dir, stdio, terminal && o.consoleSocket != "")
	if err != nil {
		return nil, err
	}
	if c.PidStart, _, err = oci.ProcStart(vmm.Process.Pid); err != nil {
		return nil, fmt.Errorf("the VMM process: %w", err)
	}
	c.Pid, c.Creator, c.CreatorStart = vmm.Process.Pid, 0, 0
	if err := c.Save(); err != nil {
		return nil, err
	}
	if o.pidFile != "" {
		if err := oci.WritePidFile(o.pidFile, c.Pid); err != nil {
			return nil, err
		}
	}
	if master != nil {
		if err := oci.SendConsole(o.consoleSocket, master); err != nil {
			return nil, err
		}
	}
	c.Unlock()
	return vmm, nil
}

// startVMM starts the VMM process for the state directory dir, with stdio
// as its stdin, stdout and stderr, and waits until it reports the
// container created ("ok") or fails ("error: ...") on a pipe, its fd 3.
// With a terminal, the VMM leads a session of its own whose controlling
// terminal is the slave: a change of the terminal's size then reaches it
// as SIGWINCH.
func startVMM(g *ociGlobals, dir string, stdio []*os.File, terminal bool) (*exec.Cmd, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start the VMM: %w", err)
	}
	defer r.Close()
	// Descriptors this process inherited (an engine's sockets, a shell's
	// strays) must not reach the VMM, which lives as long as the
	// container: only its stdio and the pipe do.
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	exe, err := os.Executable()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("find the kiln binary: %w", err)
	}
	vmmArgs := []string{"_oci-vmm", "--kernel", g.kernel, "--initrd", g.initrd}
	if g.noSeccomp {
		vmmArgs = append(vmmArgs, "--no-seccomp")
	}
	vmm := exec.Command(exe, append(vmmArgs, dir)...)
	vmm.Stdin, vmm.Stdout, vmm.Stderr = stdio[0], stdio[1], stdio[2]
	vmm.ExtraFiles = []*os.File{w}
	vmm.Dir = "/" // hold no bundle directory busy
	vmm.Env = vmmEnv()
	// Until it reports, the VMM dies with kiln create: a create that is
	// killed leaves nothing running. It clears this once it is created.
	vmm.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: terminal, Setctty: terminal, Ctty: 0}
	if err := vmm.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start the VMM: %w", err)
	}
	w.Close()
	line, rerr := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	if rerr == nil && line == "ok" {
		return vmm, nil
	}
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		vmm.Wait()
		return nil, errors.New(msg)
	}
	werr := vmm.Wait()
	if rerr == io.EOF {
		return nil, fmt.Errorf("the VMM process ended before the container was created (%v)", werr)
	}
	return nil, fmt.Errorf("the VMM process: %q, %v", line, rerr)
}

// vmmEnv is the VMM's environment: kiln's own, without the variables of
// conmon's that name descriptors the VMM does not have.
func vmmEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "_OCI_") {
			env = append(env, kv)
		}
	}
	return env
}
