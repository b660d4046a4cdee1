package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

// kiln as an OCI runtime (docs/oci.md): the command line podman (through
// conmon) and containerd (through its runc shim) call, with runc's
// commands, flags and exit codes:
//
//	kiln [global flags] create [--bundle DIR] [--pid-file F] [--console-socket S] ID
//	kiln [global flags] start ID
//	kiln [global flags] state ID
//	kiln [global flags] kill [--all] ID [SIGNAL]
//	kiln [global flags] delete [--force] ID
//	kiln [global flags] run [--bundle DIR] [--detach] ... ID
//	kiln [global flags] ps [--format json] ID
//	kiln features
//
// The global flags are runc's (--root, --log, --log-format,
// --systemd-cgroup, --debug, --rootless), and kiln's --kernel and
// --initrd, which podman passes as --runtime-flag. Every error is one
// line on stderr, and also a line in --log when one is given, and the
// exit code is 1, as runc's. The files: oci.go (this: parsing and the
// small commands), ocicreate.go (create and run), ocivmm.go (the VMM
// process a container is), ociwarm.go (its warm snapshot).

// ociCommands are the subcommands that make kiln's command line runc's.
var ociCommands = map[string]bool{
	"create": true, "start": true, "state": true, "kill": true, "delete": true,
	"features": true, "ps": true, "exec": true, "pause": true, "resume": true,
	"update": true, "checkpoint": true, "restore": true, "events": true, "list": true,
}

// ociGlobals are the flags before an OCI subcommand.
type ociGlobals struct {
	root, logPath, logFormat string
	kernel, initrd           string
	noSeccomp                bool
}

func (g *ociGlobals) store() oci.Store { return oci.Store{Root: g.root} }
func (g *ociGlobals) log() oci.Log     { return oci.Log{Path: g.logPath, Format: g.logFormat} }

// isOCIRun tells runc's run (`kiln run --bundle DIR ID`, or `kiln run ID`
// in the bundle) from kiln's own (`kiln run [flags] [-- COMMAND]`): an OCI
// flag before any "--", or a single argument that is not a flag.
func isOCIRun(args []string) bool {
	if len(args) == 1 && !strings.HasPrefix(args[0], "-") {
		return true
	}
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--bundle", "-b", "--pid-file", "--console-socket", "--detach", "-d",
			"--no-pivot", "--no-new-keyring", "--preserve-fds", "--keep", "--no-subreaper":
			return true
		}
	}
	return false
}

// cmdOCI runs an OCI command: global flags, then the subcommand.
func cmdOCI(args []string) int {
	g := &ociGlobals{}
	fs := pflag.NewFlagSet("kiln", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.StringVar(&g.root, "root", oci.DefaultRoot, "directory for the containers' state")
	fs.StringVar(&g.logPath, "log", "", "append errors to this file")
	fs.StringVar(&g.logFormat, "log-format", "text", "format of --log: text or json")
	fs.StringVar(&g.kernel, "kernel", defaultPath("KILN_KERNEL", "vmlinux"), "guest kernel of the containers' VMs")
	fs.StringVar(&g.initrd, "initrd", defaultPath("KILN_INITRD", "initramfs.cpio"), "initramfs of the containers' VMs (kiln's)")
	fs.BoolVar(&g.noSeccomp, "no-seccomp", false, "run the containers' VMMs without kiln's seccomp filters (for debugging; docs/seccomp.md)")
	fs.Bool("systemd-cgroup", false, "accepted for runc's callers; a VM has no cgroup to manage")
	fs.Bool("debug", false, "accepted for runc's callers")
	fs.String("rootless", "auto", "accepted for runc's callers")
	fs.String("criu", "", "accepted for runc's callers")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		return ociFail(g, fmt.Errorf("%v (see kiln --help)", err))
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return ociFail(g, errors.New("no command given (see kiln --help)"))
	}
	cmd, args := rest[0], rest[1:]
	var err error
	switch cmd {
	case "create":
		err = ociCreateCmd(g, args)
	case "run":
		return ociRunCmd(g, args)
	case "start":
		err = ociStart(g, args)
	case "state":
		err = ociState(g, args)
	case "kill":
		err = ociKill(g, args)
	case "delete":
		err = ociDelete(g, args)
	case "ps":
		err = ociPs(g, args)
	case "features":
		err = ociFeatures(args)
	case "exec":
		err = errors.New("exec: running another process in a container's VM is not supported yet (docs/oci.md)")
	case "pause", "resume", "update", "checkpoint", "restore", "events", "list":
		err = fmt.Errorf("%s is not supported by kiln (docs/oci.md)", cmd)
	default:
		err = fmt.Errorf("unknown command %q (see kiln --help)", cmd)
	}
	if err != nil {
		return ociFail(g, err)
	}
	return 0
}

// ociFail reports err as runc does: one line on stderr, the same in the
// log, exit code 1.
func ociFail(g *ociGlobals, err error) int {
	msg := "kiln: " + strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintln(os.Stderr, msg)
	if lerr := g.log().Error(msg); lerr != nil {
		fmt.Fprintf(os.Stderr, "kiln: %v\n", lerr)
	}
	return 1
}

// ociFlags makes a subcommand's flag set; parse takes the arguments and
// checks the count of the positional ones (the ID, and kill's signal).
func ociFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.Usage = func() {}
	return fs
}

func parseOCI(fs *pflag.FlagSet, args []string, min, max int) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%s: %v", fs.Name(), err)
	}
	if n := fs.NArg(); n < min || n > max {
		if max == 0 {
			return nil, fmt.Errorf("%s takes no arguments", fs.Name())
		}
		what := "a container ID"
		if max > 1 {
			what = "a container ID and a signal"
		}
		return nil, fmt.Errorf("%s needs %s, got %d arguments", fs.Name(), what, n)
	}
	return fs.Args(), nil
}

// ociStart lets a created container's process run.
func ociStart(g *ociGlobals, args []string) error {
	pos, err := parseOCI(ociFlags("start"), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := g.store().Open(pos[0], true)
	if err != nil {
		return err
	}
	defer c.Unlock()
	if st := c.Status(); st != specs.StateCreated {
		return fmt.Errorf("cannot start a container that is %s", st)
	}
	if err := oci.Call(c.ControlPath(), oci.Request{Op: "start"}); err != nil {
		return fmt.Errorf("start %s: %w", c.ID, err)
	}
	c.Started = true
	return c.Save()
}

// ociState prints the OCI state as JSON.
func ociState(g *ociGlobals, args []string) error {
	pos, err := parseOCI(ociFlags("state"), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := g.store().Open(pos[0], false)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(c.State(), "", "  ")
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", b)
	return nil
}

// ociKill sends a signal to the container: SIGKILL ends its VMM process,
// any other reaches the container's process in the guest.
func ociKill(g *ociGlobals, args []string) error {
	fs := ociFlags("kill")
	all := fs.BoolP("all", "a", false, "signal every process of the container")
	pos, err := parseOCI(fs, args, 1, 2)
	if err != nil {
		return err
	}
	sig := unix.SIGTERM
	if len(pos) == 2 {
		if sig, err = oci.ParseSignal(pos[1]); err != nil {
			return fmt.Errorf("kill: %w", err)
		}
	}
	c, err := g.store().Open(pos[0], false)
	if err != nil {
		return err
	}
	switch c.Status() {
	case specs.StateStopped:
		return fmt.Errorf("%w: %s", oci.ErrNotRunning, c.ID)
	case specs.StateCreating:
		return fmt.Errorf("container %s is being created", c.ID)
	}
	if sig == unix.SIGKILL {
		if err := unix.Kill(c.Pid, unix.SIGKILL); err != nil {
			return fmt.Errorf("kill %s: %w", c.ID, err)
		}
		return nil
	}
	err = oci.Call(c.ControlPath(), oci.Request{Op: "signal", Signal: int(sig), All: *all})
	if err != nil && (errors.Is(err, oci.ErrNotRunning) || c.Status() == specs.StateStopped) {
		// The process exited, or the VMM with it as kill asked.
		return fmt.Errorf("%w: %s", oci.ErrNotRunning, c.ID)
	}
	if err != nil {
		return fmt.Errorf("kill %s: %w", c.ID, err)
	}
	return nil
}

// ociDelete removes a container's state, ending its VMM first if it is
// only created, or with --force, running.
func ociDelete(g *ociGlobals, args []string) error {
	fs := ociFlags("delete")
	force := fs.BoolP("force", "f", false, "kill a running container first")
	pos, err := parseOCI(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := g.store().Open(pos[0], true)
	if errors.Is(err, oci.ErrNotExist) && *force {
		return nil // runc's answer, which podman's cleanup counts on
	}
	if err != nil {
		return err
	}
	switch st := c.Status(); st {
	case specs.StateRunning:
		if !*force {
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
	return c.Remove()
}

// endProcess kills pid, if it is still the process that started at
// start, and waits until it is gone (a zombie is gone: it holds nothing).
func endProcess(pid int, start uint64) error {
	if !oci.Alive(pid, start) {
		return nil
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !oci.Alive(pid, start) {
			return nil
		}
	}
	return fmt.Errorf("process %d did not end", pid)
}

// ociPs lists the container's host processes: its VMM.
func ociPs(g *ociGlobals, args []string) error {
	fs := ociFlags("ps")
	format := fs.StringP("format", "f", "table", "table or json")
	pos, err := parseOCI(fs, args, 1, 1<<20) // runc passes further args to ps(1)
	if err != nil {
		return err
	}
	c, err := g.store().Open(pos[0], false)
	if err != nil {
		return err
	}
	pids := []int{}
	if st := c.Status(); st == specs.StateCreated || st == specs.StateRunning {
		pids = append(pids, c.Pid)
	}
	switch *format {
	case "json":
		b, _ := json.Marshal(pids)
		fmt.Printf("%s\n", b)
	case "table":
		fmt.Println("PID")
		for _, p := range pids {
			fmt.Println(p)
		}
	default:
		return fmt.Errorf("ps: unknown format %q (table or json)", *format)
	}
	return nil
}

// ociFeatures prints what kiln recognizes of the specification.
func ociFeatures(args []string) error {
	if _, err := parseOCI(ociFlags("features"), args, 0, 0); err != nil {
		return err
	}
	b, err := json.MarshalIndent(oci.Features(), "", "    ")
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", b)
	return nil
}
