package main

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Port I/O (io_amd64.s). The calling thread needs ioperm(2) for every
// port an access touches: main keeps the attack on one thread.
func inb(port uint16) uint8
func inw(port uint16) uint16
func inl(port uint16) uint32
func outb(port uint16, val uint8)
func outw(port uint16, val uint16)
func outl(port uint16, val uint32)
func insb(port uint16, buf uintptr, n uintptr)
func outsb(port uint16, buf uintptr, n uintptr)

// Memory-mapped I/O through a /dev/mem mapping (io_amd64.s): one load or
// store of exactly the width named.
func mmioRead8(addr uintptr) uint8
func mmioRead16(addr uintptr) uint16
func mmioRead32(addr uintptr) uint32
func mmioRead64(addr uintptr) uint64
func mmioWrite8(addr uintptr, v uint8)
func mmioWrite16(addr uintptr, v uint16)
func mmioWrite32(addr uintptr, v uint32)
func mmioWrite64(addr uintptr, v uint64)

// ioperm grants this thread the ports [from, from+n).
func ioperm(from, n uint16) error {
	if _, _, e := unix.Syscall(unix.SYS_IOPERM, uintptr(from), uintptr(n), 1); e != 0 {
		return fmt.Errorf("ioperm %#x+%d: %w", from, n, e)
	}
	return nil
}

// portRead reads size (1, 2 or 4) bytes from port.
func portRead(port uint16, size int) uint32 {
	switch size {
	case 1:
		return uint32(inb(port))
	case 2:
		return uint32(inw(port))
	}
	return inl(port)
}

// portWrite writes size (1, 2 or 4) bytes of v to port.
func portWrite(port uint16, size int, v uint32) {
	switch size {
	case 1:
		outb(port, uint8(v))
	case 2:
		outw(port, uint16(v))
	default:
		outl(port, v)
	}
}

// portStringIn and portStringOut are rep insb/outsb: one VM exit that
// carries many bytes for one port.
func portStringIn(port uint16, b []byte) {
	if len(b) > 0 {
		insb(port, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		runtime.KeepAlive(b)
	}
}

func portStringOut(port uint16, b []byte) {
	if len(b) > 0 {
		outsb(port, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		runtime.KeepAlive(b)
	}
}

// mmioRead reads size (1, 2, 4 or 8) bytes at b[off] of a mapping of
// device memory.
func mmioRead(b []byte, off int, size int) uint64 {
	p := uintptr(unsafe.Pointer(&b[off]))
	switch size {
	case 1:
		return uint64(mmioRead8(p))
	case 2:
		return uint64(mmioRead16(p))
	case 4:
		return uint64(mmioRead32(p))
	}
	return mmioRead64(p)
}

// mmioWrite writes size (1, 2, 4 or 8) bytes of v at b[off].
func mmioWrite(b []byte, off int, size int, v uint64) {
	p := uintptr(unsafe.Pointer(&b[off]))
	switch size {
	case 1:
		mmioWrite8(p, uint8(v))
	case 2:
		mmioWrite16(p, uint16(v))
	case 4:
		mmioWrite32(p, uint32(v))
	default:
		mmioWrite64(p, v)
	}
}
