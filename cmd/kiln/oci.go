package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

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
// small commands), ocicreate.go (create and run), ocivmm.go (the hidden
// command that is a container's VMM). What the commands do is package
// oci's Runtime and VMM.

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

func (g *ociGlobals) log() oci.Log { return oci.Log{Path: g.logPath, Format: g.logFormat} }

// runtime is the OCI runtime the global flags describe.
func (g *ociGlobals) runtime() (*oci.Runtime, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the kiln binary: %w", err)
	}
	return &oci.Runtime{Store: oci.Store{Root: g.root}, Kernel: g.kernel, Initrd: g.initrd, Exe: exe, NoSeccomp: g.noSeccomp}, nil
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
	r, err := g.runtime()
	if err != nil {
		return ociFail(g, err)
	}
	switch cmd {
	case "create":
		err = ociCreateCmd(r, args)
	case "run":
		return ociRunCmd(g, r, args)
	case "start":
		err = ociStart(r, args)
	case "state":
		err = ociState(r, args)
	case "kill":
		err = ociKill(r, args)
	case "delete":
		err = ociDelete(r, args)
	case "ps":
		err = ociPs(r, args)
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
func ociStart(r *oci.Runtime, args []string) error {
	pos, err := parseOCI(ociFlags("start"), args, 1, 1)
	if err != nil {
		return err
	}
	return r.Start(pos[0])
}

// ociState prints the OCI state as JSON.
func ociState(r *oci.Runtime, args []string) error {
	pos, err := parseOCI(ociFlags("state"), args, 1, 1)
	if err != nil {
		return err
	}
	st, err := r.State(pos[0])
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", b)
	return nil
}

// ociKill sends a signal to the container (oci.Runtime.Kill).
func ociKill(r *oci.Runtime, args []string) error {
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
	return r.Kill(pos[0], sig, *all)
}

// ociDelete removes a container's state (oci.Runtime.Delete).
func ociDelete(r *oci.Runtime, args []string) error {
	fs := ociFlags("delete")
	force := fs.BoolP("force", "f", false, "kill a running container first")
	pos, err := parseOCI(fs, args, 1, 1)
	if err != nil {
		return err
	}
	return r.Delete(pos[0], *force)
}

// ociPs lists the container's host processes: its VMM.
func ociPs(r *oci.Runtime, args []string) error {
	fs := ociFlags("ps")
	format := fs.StringP("format", "f", "table", "table or json")
	pos, err := parseOCI(fs, args, 1, 1<<20) // runc passes further args to ps(1)
	if err != nil {
		return err
	}
	pids, err := r.Pids(pos[0])
	if err != nil {
		return err
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
