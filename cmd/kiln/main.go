// Command kiln is a KVM micro-VM monitor: it boots a Linux kernel and a
// u-root initramfs in a fresh virtual machine, runs a shell or one command
// there, and exits with the command's status.
//
// Usage:
//
//	kiln run [flags] [-- COMMAND [ARG...]]
//	kiln snapshot --out DIR [flags]
//	kiln probe
//	kiln bench [flags] [-- COMMAND [ARG...]]
//	kiln version
//
// and, as an OCI runtime that podman and containerd call as they call runc
// (oci.go, docs/oci.md):
//
//	kiln [--root DIR] [--log FILE] create|start|state|kill|delete|run|ps|list|events|update|spec|features ...
//
// Exit codes are listed in exitcodes.go and in the README.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
	"github.com/kiln-vmm/kiln/vmm/warm"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	start := time.Now()
	os.Exit(Main(os.Args[1:], start))
}

// Main runs kiln with args and returns its exit code.
func Main(args []string, start time.Time) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "run":
		if isOCIRun(args[1:]) {
			return cmdOCI(args, start) // runc's run (oci.go)
		}
		return cmdRun(args[1:], start)
	case warm.SnapshotCommand:
		return cmdSnapshotChild(start) // a warm snapshot's child (vmm/warm)
	case "_oci-vmm":
		return cmdOCIVMM(args[1:], start) // a container's VMM, started by kiln create
	case oci.ExecCommand:
		return oci.RunExecProcess(os.NewFile(3, "kiln exec")) // a detached exec, started by kiln exec
	case "snapshot":
		return cmdSnapshot(args[1:], start)
	case "probe":
		return cmdProbe(args[1:])
	case "bench":
		return cmdBench(args[1:])
	case "version", "--version":
		fmt.Printf("kiln %s\n", version)
		return 0
	case "help", "-h", "--help":
		usage(os.Stdout)
		return 0
	}
	if ociCommands[args[0]] != nil || strings.HasPrefix(args[0], "-") {
		return cmdOCI(args, start) // kiln as an OCI runtime (oci.go)
	}
	fmt.Fprintf(os.Stderr, "kiln: unknown command %q (try kiln --help)\n", args[0])
	return ExitUsage
}

func usage(w *os.File) {
	fmt.Fprint(w, `kiln: a KVM micro-VM monitor

Usage:
  kiln run [flags] [-- COMMAND [ARG...]]   boot a guest: a shell, or run COMMAND
  kiln run --restore DIR [-- COMMAND...]   start the guest from a snapshot
  kiln run --warm [flags] [-- COMMAND...]  start it from a cached snapshot of itself
  kiln snapshot --out DIR [flags]          boot a guest and snapshot it, ready for a command
  kiln probe                               show what this host's KVM offers
  kiln bench [flags] [-- COMMAND...]       time kiln against QEMU and containers
  kiln version                             print the version
  kiln COMMAND --help                      help for a command

As an OCI runtime (podman --runtime, containerd's runc shim; docs/oci.md),
with runc's commands, flags and exit codes (1 for every error; 75 for a
pause or resume the container's status does not allow):
  kiln [--root DIR] [--log FILE] [--log-format json] [--kernel K] [--initrd I] COMMAND
  kiln create [--bundle DIR] [--pid-file F] [--console-socket S] ID
  kiln start ID | kiln state ID | kiln kill [--all] ID [SIGNAL] | kiln delete [--force] ID
  kiln run [--bundle DIR] [--detach] ID | kiln ps [--format json] ID | kiln list
  kiln pause ID | kiln resume ID | kiln events [--stats] ID | kiln update ID
  kiln spec | kiln features

Exit codes: the guest command's status, or
  64 usage error, 65 bad kernel, initrd or snapshot, 66 file not found or unreadable,
  69 KVM not available, 70 VMM error, 71 guest crashed,
  73 cannot write an output file, 159 a seccomp filter refused a system call.
`)
}
