package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl issues one KVM ioctl with an integer argument and wraps its error.
func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return r, &IoctlError{Op: IoctlName(req), Errno: errno}
	}
	return r, nil
}

// ioctlPtr issues one KVM ioctl whose argument is a pointer to a struct.
func ioctlPtr[T any](fd int, req uintptr, arg *T) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(arg)))
	if errno != 0 {
		return r, &IoctlError{Op: IoctlName(req), Errno: errno}
	}
	return r, nil
}
