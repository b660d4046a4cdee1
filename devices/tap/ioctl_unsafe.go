package tap

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlPtr issues an ioctl on fd whose argument points at *arg: the
// ifreq of TUNSETIFF, the header size of TUNSETVNETHDRSZ.
func ioctlPtr[T any](fd int, req uint, arg *T) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(arg))); e != 0 {
		return e
	}
	return nil
}
