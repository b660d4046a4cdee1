package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
	"github.com/kiln-vmm/kiln/cmd/kiln/vmflags"
)

// kiln as an OCI runtime (docs/oci.md): the command line podman (through
// conmon) and containerd (through its runc shim) call, with runc's
// commands, flags and exit codes. The global flags are runc's (--root,
// --log, --log-format, --systemd-cgroup, --debug, --rootless), and
// kiln's --kernel and --initrd, which podman passes as --runtime-flag.
// Every error is one line on stderr, and also a line in --log when one is
// given, and the exit code is 1, as runc's, but for a pause or resume the
// container's status does not allow (ExitWrongState). `kiln COMMAND --help` prints
// the command's usage and exits 0.
//
// This file is the command line: each command's flags, arguments and
// output. What they do is package oci's Runtime; ocicreate.go has create
// and run, ocivmm.go the hidden command that is a container's VMM.

// ociCommand is one of runc's commands.
type ociCommand struct {
	args  string // after the command's name in its usage: "[flags] ID"
	about string
	// min and max are how many arguments it takes after its flags.
	min, max int
	// flags defines the command's flags on fs and returns what runs it.
	flags func(fs *pflag.FlagSet) func(r *oci.Runtime, args []string) error
}

// ociCommands are runc's commands as kiln has them.
var ociCommands = map[string]*ociCommand{
	"create": {"[--bundle DIR] [--pid-file F] [--console-socket S] ID", "create a container: its VM runs, its process waits for start", 1, 1, ociCreateCommand},
	"run":    {"[--bundle DIR] [--detach] ... ID", "create and start a container, wait for it unless --detach, and delete it", 1, 1, ociRunCommand},
	"start":  {"ID", "let a created container's process run", 1, 1, simple((*oci.Runtime).Start)},
	"state":  {"ID", "print the container's OCI state as JSON", 1, 1, stateCommand},
	"kill":   {"[--all] ID [SIGNAL]", "send a signal (default SIGTERM) to the container's process", 1, 2, killCommand},
	"delete": {"[--force] ID", "remove a stopped (with --force, any) container", 1, 1, deleteCommand},
	"ps":     {"[--format table|json] ID", "list the container's host processes: its VMM", 1, 1 << 20, psCommand},
	"list":   {"[--format table|json] [--quiet]", "list the containers under the root", 0, 0, listCommand},
	"events": {"[--stats] [--interval D] ID", "print the container's resource use as JSON, once with --stats, else every interval until it stops", 1, 1, eventsCommand},
	"update": {"[resource flags] [-r FILE] ID", "change a running container's limits in its host cgroup (CPU, cpuset, pids, I/O); its VM's memory is fixed", 1, 1, updateCommand},
	"spec":   {"[--bundle DIR]", "write an example config.json", 0, 0, specCommand},
	"pause":  {"ID", "stop the container's VM: its vCPUs leave the guest and wait for resume", 1, 1, simple((*oci.Runtime).Pause)},
	"resume": {"ID", "let a paused container's VM go on where it was", 1, 1, simple((*oci.Runtime).Resume)},
	"features": {"", "print what kiln recognizes of the OCI specification", 0, 0, func(*pflag.FlagSet) func(*oci.Runtime, []string) error {
		return func(*oci.Runtime, []string) error { return printJSON(oci.Features(), "    ") }
	}},
	"exec":       {"[flags] ID [COMMAND...]", "run another process in a running container's VM, and exit with its status", 1, 1 << 20, execCommand},
	"checkpoint": {"[--image-path DIR] [--work-path DIR] [--leave-running] ID", "save a running container's VM to DIR (a VM snapshot, not CRIU's images), and stop it unless --leave-running", 1, 1, checkpointCommand},
	"restore":    {"[--image-path DIR] [--bundle DIR] [--detach] [--pid-file F] [--console-socket S] ID", "create a running container from a checkpoint and a bundle: its process goes on where it was", 1, 1, restoreCommand},
}

// ociGlobals are the flags before an OCI subcommand.
type ociGlobals struct {
	root, logPath, logFormat string
	kernel, initrd, phases   string
	noSeccomp, systemdCgroup bool
}

func (g *ociGlobals) log() oci.Log { return oci.Log{Path: g.logPath, Format: g.logFormat} }

// runtime is the OCI runtime the global flags describe.
func (g *ociGlobals) runtime(start time.Time) (*oci.Runtime, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the kiln binary: %w", err)
	}
	return &oci.Runtime{Store: oci.Store{Root: g.root}, Kernel: g.kernel, Initrd: g.initrd, Exe: exe, NoSeccomp: g.noSeccomp, SystemdCgroup: g.systemdCgroup, Log: g.log(), Began: start}, nil
}

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
func cmdOCI(args []string, start time.Time) int {
	g := &ociGlobals{}
	fs := pflag.NewFlagSet("kiln", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.StringVar(&g.root, "root", oci.DefaultRoot, "directory for the containers' state")
	fs.StringVar(&g.logPath, "log", "", "append errors to this file")
	fs.StringVar(&g.logFormat, "log-format", "text", "format of --log: text or json")
	fs.StringVar(&g.kernel, "kernel", vmflags.DefaultPath("KILN_KERNEL", "vmlinux"), "guest kernel of the containers' VMs")
	fs.StringVar(&g.initrd, "initrd", vmflags.DefaultPath("KILN_INITRD", "initramfs.cpio"), "initramfs of the containers' VMs (kiln's)")
	fs.BoolVar(&g.noSeccomp, "no-seccomp", false, "run the containers' VMMs without kiln's seccomp filters (for debugging; docs/seccomp.md)")
	fs.StringVar(&g.phases, "phases", os.Getenv(oci.PhasesEnv), "append the containers' phase marks to this file, for kiln bench (KILN_PHASES; cmd/kiln/oci/phases.go)")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "linux.cgroupsPath is systemd's slice:prefix:name (the VMM's host cgroup, docs/oci.md)")
	fs.Bool("debug", false, "accepted for runc's callers")
	fs.String("rootless", "auto", "accepted for runc's callers")
	fs.String("criu", "", "accepted for runc's callers")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		return ociFail(g, fmt.Errorf("%v (see kiln --help)", err))
	}
	if g.phases != "" {
		os.Setenv(oci.PhasesEnv, g.phases) // for this process and its VMM
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return ociFail(g, errors.New("no command given (see kiln --help)"))
	}
	name, args := rest[0], rest[1:]
	c, ok := ociCommands[name]
	if !ok {
		return ociFail(g, fmt.Errorf("unknown command %q (see kiln --help)", name))
	}
	cfs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	cfs.SortFlags = false
	cfs.Usage = func() {}
	run := c.flags(cfs)
	help := cfs.BoolP("help", "h", false, "show this help")
	if err := cfs.Parse(args); err != nil {
		return ociFail(g, fmt.Errorf("%s: %v (see kiln %s --help)", name, err, name))
	}
	if *help {
		fmt.Printf("Usage: kiln [global flags] %s %s\n\n%s.\n\nFlags:\n", name, c.args, strings.ToUpper(c.about[:1])+c.about[1:])
		cfs.SetOutput(os.Stdout)
		cfs.PrintDefaults()
		return 0
	}
	if n := cfs.NArg(); n < c.min || n > c.max {
		return ociFail(g, fmt.Errorf("%s takes %s, not %d arguments (see kiln %s --help)", name, argsWanted(c), n, name))
	}
	r, err := g.runtime(start)
	if err == nil {
		err = run(r, cfs.Args())
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st) // run's container's status: nothing to say
	}
	var ce *oci.CodedError
	if errors.As(err, &ce) {
		ociFail(g, err)
		return ce.Code // exec's: a container not running, a command not found
	}
	if err != nil {
		return ociFail(g, err)
	}
	return 0
}

// exitStatus is a command's exit code that is no error: kiln run's
// container's status.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

func argsWanted(c *ociCommand) string {
	switch {
	case c.max == 0:
		return "no arguments"
	case c.max == 2:
		return "a container ID and a signal"
	}
	return "a container ID"
}

// ociFail reports err as runc does: one line on stderr, the same in the
// log, exit code 1.
func ociFail(g *ociGlobals, err error) int {
	msg := "kiln: " + strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintln(os.Stderr, msg)
	if lerr := g.log().Error(msg); lerr != nil {
		fmt.Fprintf(os.Stderr, "kiln: %v\n", lerr)
	}
	var se *oci.StateError
	if errors.As(err, &se) {
		return ExitWrongState
	}
	return 1
}

// simple is a command of an ID and no flags.
func simple(do func(*oci.Runtime, string) error) func(*pflag.FlagSet) func(*oci.Runtime, []string) error {
	return func(*pflag.FlagSet) func(*oci.Runtime, []string) error {
		return func(r *oci.Runtime, args []string) error { return do(r, args[0]) }
	}
}

func printJSON(v any, indent string) error {
	b, err := json.MarshalIndent(v, "", indent)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", b)
	return nil
}

func stateCommand(*pflag.FlagSet) func(*oci.Runtime, []string) error {
	return func(r *oci.Runtime, args []string) error {
		st, err := r.State(args[0])
		if err != nil {
			return err
		}
		return printJSON(st, "  ")
	}
}

func killCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	all := fs.BoolP("all", "a", false, "signal every process of the container")
	return func(r *oci.Runtime, args []string) error {
		sig := unix.SIGTERM
		if len(args) == 2 {
			var err error
			if sig, err = oci.ParseSignal(args[1]); err != nil {
				return fmt.Errorf("kill: %w", err)
			}
		}
		return r.Kill(args[0], sig, *all)
	}
}

func deleteCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	force := fs.BoolP("force", "f", false, "kill a running container first")
	return func(r *oci.Runtime, args []string) error { return r.Delete(args[0], *force) }
}

func psCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	format := fs.StringP("format", "f", "table", "table or json")
	return func(r *oci.Runtime, args []string) error {
		pids, err := r.Pids(args[0]) // runc passes further args to ps(1)
		if err != nil {
			return err
		}
		return oci.WritePids(os.Stdout, pids, *format)
	}
}

func listCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	format := fs.StringP("format", "f", "table", "table or json")
	quiet := fs.BoolP("quiet", "q", false, "print only the containers' IDs")
	return func(r *oci.Runtime, _ []string) error {
		list, err := r.List()
		if err != nil {
			return err
		}
		return oci.WriteList(os.Stdout, list, *format, *quiet)
	}
}

func eventsCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	stats := fs.Bool("stats", false, "print the resource use once and exit")
	interval := fs.Duration("interval", 5*time.Second, "how often to print it")
	return func(r *oci.Runtime, args []string) error { return r.Events(os.Stdout, args[0], *stats, *interval) }
}

func updateCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	resources := fs.StringP("resources", "r", "", "a JSON file of the new linux.resources (- for stdin), applied over the flags")
	for _, name := range oci.UpdateFlagNames {
		fs.String(name, "", "as runc update's: written to the container's host cgroup (memory: only the limit it has; see docs/oci.md)")
	}
	return func(r *oci.Runtime, args []string) error {
		flags := oci.UpdateFlags{}
		fs.Visit(func(f *pflag.Flag) {
			if f.Name != "help" && f.Name != "resources" {
				flags[f.Name] = f.Value.String()
			}
		})
		return r.Update(args[0], flags, *resources)
	}
}

func specCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	bundle := fs.StringP("bundle", "b", "", "the bundle directory to write config.json in (default: the working directory)")
	fs.Bool("rootless", false, "accepted for runc's callers: a kiln container's root is the VM's")
	return func(*oci.Runtime, []string) error {
		path := filepath.Join(*bundle, "config.json")
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("spec: %s exists: remove it first", path)
		}
		b, err := json.MarshalIndent(oci.ExampleSpec(), "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(b, '\n'), 0o666)
	}
}

func execCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	o := oci.ExecOptions{Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr}}
	fs.SetInterspersed(false) // the command's own flags follow the ID
	fs.StringVarP(&o.Process, "process", "p", "", "a JSON file holding the process (an OCI process object)")
	fs.BoolVarP(&o.Tty, "tty", "t", false, "give the process a terminal")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "send the master of the process's terminal to this unix socket")
	fs.BoolVarP(&o.Detach, "detach", "d", false, "return once the process started")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the host pid that stands for the process here")
	fs.StringVar(&o.Cwd, "cwd", "", "the process's working directory in the container")
	fs.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable (KEY=VALUE), repeatable")
	fs.StringVarP(&o.User, "user", "u", "", "UID[:GID] to run as")
	fs.StringArrayVarP(&o.Caps, "cap", "c", nil, "add a capability to the bounding set, repeatable")
	fs.BoolVar(&o.NoNewPrivs, "no-new-privs", false, "set no_new_privs for the process")
	fs.StringArray("additional-gids", nil, "accepted for runc's callers")
	fs.String("process-label", "", "accepted for runc's callers")
	fs.String("apparmor", "", "accepted for runc's callers")
	fs.Int("preserve-fds", 0, "accepted for runc's callers")
	fs.String("cgroup", "", "accepted for runc's callers")
	return func(r *oci.Runtime, args []string) error {
		o.ID, o.Args = args[0], args[1:]
		status, err := r.Exec(o)
		if err != nil {
			return err
		}
		if status != 0 {
			return exitStatus(status)
		}
		return nil
	}
}
