package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl issues one KVM ioctl with an integer argument and wraps its error.
// An ioctl that a signal interrupted before it did anything (EINTR) is
// issued again: Go's runtime signals its threads to preempt goroutines,
// and KVM_CREATE_VM, for one, gives up when a signal is pending. KVM_RUN
// is the exception: its EINTR is how a vCPU is stopped.
func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		if errno == unix.EINTR && req != kvmRun {
			continue
		}
		if errno != 0 {
			return r, &IoctlError{Op: IoctlName(req), Errno: errno}
		}
		return r, nil
	}
}

// ioctlPtr issues one KVM ioctl whose argument is a pointer to a struct,
// retrying on EINTR as ioctl does.
func ioctlPtr[T any](fd int, req uintptr, arg *T) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(arg)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return r, &IoctlError{Op: IoctlName(req), Errno: errno}
		}
		return r, nil
	}
}
