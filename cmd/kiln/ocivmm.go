package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
	"github.com/kiln-vmm/kiln/vmm/warm"
)

// cmdOCIVMM is `kiln _oci-vmm STATEDIR`: a container's VMM (oci.VMM),
// started by kiln create (oci.Spawn), which it reports to on fd 3. It
// exits with the container's status.
func cmdOCIVMM(args []string, start time.Time) int {
	fs := pflag.NewFlagSet(oci.VMMCommand, pflag.ContinueOnError)
	kernel := fs.String("kernel", "", "")
	initrd := fs.String("initrd", "", "")
	noSeccomp := fs.Bool("no-seccomp", false, "")
	restore := fs.String("restore", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "kiln: %s is started by kiln create\n", oci.VMMCommand)
		return ExitUsage
	}
	mode := seccomp.On
	if *noSeccomp {
		mode = seccomp.Off
	} else if os.Getenv("KILN_SECCOMP") == "log" {
		mode = seccomp.Log
	}
	// The warm snapshot's child speaks to a buffer of its own, not to the
	// container's stderr; what went wrong comes back in its reply.
	child, err := warm.NewChild(discard{}, mode, false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln: %v\n", err)
		return 1
	}
	v := &oci.VMM{
		Dir: fs.Arg(0), Kernel: *kernel, Initrd: *initrd,
		Build:   oci.WarmBuilder(warm.DefaultCache(), child),
		Options: machine.Options{KVMPath: os.Getenv("KILN_KVM"), Seccomp: mode, Stderr: os.Stderr, Start: start},
		Stdin:   os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	}
	if *restore != "" {
		v.Build, v.Restored = oci.CheckpointBuilder(*restore), true
	}
	exit, err := v.Run(os.NewFile(3, "create"))
	if err != nil {
		return 1 // kiln create said it
	}
	if exit.HasStatus {
		return exit.Status
	}
	res := exit.Result
	switch res.Reason {
	case machine.ReasonError:
		return fail(res.Err)
	case machine.ReasonShutdown:
		fmt.Fprintf(os.Stderr, "kiln: the container's VM crashed: %v\n", res.Err)
		return ExitGuestCrash
	}
	fmt.Fprintf(os.Stderr, "kiln: the container's VM ended (%v) before its process reported an exit status\n", res.Reason)
	return ExitGuestCrash
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
