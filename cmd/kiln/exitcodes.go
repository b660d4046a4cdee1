package main

import (
	"errors"
	"io/fs"

	"github.com/kiln-vmm/kiln/boot"
	"github.com/kiln-vmm/kiln/devices/share"
	"github.com/kiln-vmm/kiln/devices/tap"
	"github.com/kiln-vmm/kiln/devices/virtio"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/ipc"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// kiln's own exit codes, from BSD's sysexits.h where one fits. A guest
// command's exit status is passed through as it is, so a command can return
// these numbers too; kiln's own errors always print a "kiln:" line first.
const (
	ExitUsage       = 64 // EX_USAGE: bad flag, size or count
	ExitBadInput    = 65 // EX_DATAERR: not a kernel, truncated, too big for memory
	ExitNoInput     = 66 // EX_NOINPUT: a file is missing or unreadable
	ExitNoKVM       = 69 // EX_UNAVAILABLE: /dev/kvm missing, not permitted, lacking
	ExitVMM         = 70 // EX_SOFTWARE: KVM or the VMM failed while running
	ExitGuestCrash  = 71 // the guest crashed: triple fault, panic, init died
	ExitCantCreate  = 73 // EX_CANTCREAT: an output file (kiln bench --json/--svg) cannot be written
	ExitNotReady    = 75 // EX_TEMPFAIL: kiln snapshot's app did not become ready (--ready-*)
	ExitWrongState  = 75 // EX_TEMPFAIL: kiln pause of a container not running, resume of one not paused; a snapshot of a VM whose state it cannot hold now
	ExitInterrupted = 130
	// ExitSeccomp: a seccomp filter refused one of kiln's system calls
	// (vmm/seccomp): 128 + SIGSYS, as a shell shows a process SIGSYS
	// killed. The SIGSYS handler exits with it, after its one line.
	ExitSeccomp = seccomp.ExitCode
)

// exitCode maps an error from building or running a VM to an exit code.
func exitCode(err error) int {
	var f *ipc.Failure
	if errors.As(err, &f) {
		return f.Code // another kiln process's error, with its code
	}
	switch {
	case errors.Is(err, config.ErrUsage):
		return ExitUsage
	case errors.Is(err, kvm.ErrNoKVM), errors.Is(err, kvm.ErrMissingCapability):
		return ExitNoKVM
	case errors.Is(err, boot.ErrNotKernel), errors.Is(err, boot.ErrTooBig), errors.Is(err, virtio.ErrBadImage):
		return ExitBadInput
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission), errors.Is(err, config.ErrNotRegular), errors.Is(err, config.ErrEmptyFile), errors.Is(err, tap.ErrNoTap), errors.Is(err, virtio.ErrVsock), errors.Is(err, share.ErrBadShare):
		return ExitNoInput
	case errors.Is(err, machine.ErrNotReady):
		return ExitNotReady
	case errors.Is(err, share.ErrUnsaveable):
		return ExitWrongState
	case errors.Is(err, machine.ErrSnapshot):
		return ExitBadInput
	case errors.Is(err, machine.ErrGuestCrash):
		return ExitGuestCrash
	}
	return ExitVMM
}
