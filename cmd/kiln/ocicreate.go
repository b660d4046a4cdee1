package main

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

// kiln create: the container becomes a VMM process, forked here (kiln
// itself, run again as `kiln _oci-vmm STATEDIR`: oci.Spawn, oci.VMM),
// which builds the VM from the warm snapshot, lets the guest's init set
// the container up, and holds it there until kiln start. create returns
// once the VMM reports the container created, or its error, and create
// has recorded it; the VMM's pid goes to --pid-file.
// The engine (conmon, the containerd shim) is a subreaper, so when
// create exits, the VMM becomes its child, and the VMM's exit status is
// the container's. On any failure create leaves no process and no state
// behind.

// createFlags are create's and run's flags.
func createFlags(fs *pflag.FlagSet, o *oci.CreateOptions) {
	fs.StringVarP(&o.Bundle, "bundle", "b", "", "the bundle directory (default: the working directory)")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the container's host process ID here")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "send the master of the container's terminal to this unix socket")
	fs.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass this many more file descriptors to the container (refused: a VM cannot take host files)")
	fs.Bool("no-pivot", false, "accepted for runc's callers")
	fs.Bool("no-new-keyring", false, "accepted for runc's callers")
	o.Stdio = [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
}

func ociCreateCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	var o oci.CreateOptions
	createFlags(fs, &o)
	return func(r *oci.Runtime, args []string) error {
		o.ID = args[0]
		vmm, err := r.Create(o)
		if err != nil {
			return err
		}
		return vmm.Cmd.Process.Release()
	}
}

// ociRunCommand is runc's run: create and start, then, unless --detach, wait
// for the container and exit with its status, and delete it.
func ociRunCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	var o oci.CreateOptions
	createFlags(fs, &o)
	detach := fs.BoolP("detach", "d", false, "return once the container started")
	fs.Bool("keep", false, "accepted for runc's callers")
	fs.Bool("no-subreaper", false, "accepted for runc's callers")
	return func(r *oci.Runtime, args []string) error {
		o.ID, o.Foreground = args[0], !*detach
		vmm, err := r.Create(o)
		if err != nil && fs.NFlag() == 0 && errors.Is(err, iofs.ErrNotExist) && errors.Is(err, oci.ErrBadBundle) {
			// `kiln run echo`: one word, taken for runc's run of a bundle.
			return fmt.Errorf("run %s: took %q for a container ID (runc's run, in a bundle directory), and there is no config.json here; to run a command in a VM: kiln run -- %s", o.ID, o.ID, o.ID)
		}
		if err != nil {
			return err
		}
		if err := r.Start(o.ID); err != nil {
			vmm.Kill()
			r.Delete(o.ID, true)
			return err
		}
		if *detach {
			return vmm.Cmd.Process.Release()
		}
		return waitAndDelete(r, o.ID, vmm)
	}
}

// waitAndDelete waits for a container run in the foreground (run, or
// restore without --detach), deletes it, and returns its status.
func waitAndDelete(r *oci.Runtime, id string, vmm *oci.Spawned) error {
	// The signals a terminal sends reach the VMM too (one process
	// group), which relays them to the container.
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	err := vmm.Cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		return err
	}
	if err := r.Delete(id, true); err != nil {
		return err
	}
	return exitStatus(code)
}

// criuFlags are CRIU's options runc's checkpoint and restore take, which
// a VM snapshot has no use for: accepted for runc's callers. (TCP
// connections and file locks in the guest are in the VM's memory, and
// stay; a connection's peer on the host may have given up meanwhile.)
func criuFlags(fs *pflag.FlagSet) {
	for _, b := range []string{"tcp-established", "ext-unix-sk", "shell-job", "file-locks", "lazy-pages", "auto-dedup", "tcp-skip-in-flight", "link-remap"} {
		fs.Bool(b, false, "accepted for runc's callers")
	}
	for _, v := range []string{"manage-cgroups-mode", "empty-ns", "page-server", "status-fd", "lsm-profile", "lsm-mount-context"} {
		fs.String(v, "", "accepted for runc's callers")
	}
}

func checkpointCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	var o oci.CheckpointOptions
	fs.StringVar(&o.ImagePath, "image-path", "", "write the checkpoint to this directory (default: ./checkpoint)")
	fs.StringVar(&o.WorkPath, "work-path", "", "write dump.log here (default: the image path)")
	fs.BoolVar(&o.LeaveRunning, "leave-running", false, "let the container go on after the checkpoint")
	fs.BoolVar(&o.PreDump, "pre-dump", false, "refused: a kiln checkpoint has no incremental dumps")
	fs.StringVar(&o.ParentPath, "parent-path", "", "refused, as --pre-dump")
	criuFlags(fs)
	return func(r *oci.Runtime, args []string) error {
		o.ID = args[0]
		return r.Checkpoint(o)
	}
}

func restoreCommand(fs *pflag.FlagSet) func(*oci.Runtime, []string) error {
	var o oci.RestoreOptions
	createFlags(fs, &o.CreateOptions)
	fs.StringVar(&o.ImagePath, "image-path", "", "the checkpoint's directory (default: ./checkpoint)")
	fs.StringVar(&o.WorkPath, "work-path", "", "write restore.log here (default: the image path)")
	fs.BoolVarP(&o.Detach, "detach", "d", false, "return once the container runs")
	fs.Bool("no-subreaper", false, "accepted for runc's callers")
	criuFlags(fs)
	return func(r *oci.Runtime, args []string) error {
		o.ID, o.Foreground = args[0], !o.Detach
		vmm, err := r.Restore(o)
		if err != nil {
			return err
		}
		if o.Detach {
			return vmm.Cmd.Process.Release()
		}
		return waitAndDelete(r, o.ID, vmm)
	}
}
