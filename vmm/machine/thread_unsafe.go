package machine

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// nameThread sets the calling thread's name (at most 15 bytes), which
// /proc/PID/task/TID/comm, top -H and the kernel's log show.
func nameThread(name string) {
	b := make([]byte, 16)
	copy(b[:15], name)
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}
