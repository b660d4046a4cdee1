package main

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlPtr issues an ioctl whose argument is the buffer b.
func ioctlPtr(fd uintptr, req uint, b []byte) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(unsafe.Pointer(&b[0]))); e != 0 {
		return e
	}
	return nil
}

func putInt32(b []byte, v int32) { binary.LittleEndian.PutUint32(b, uint32(v)) }
