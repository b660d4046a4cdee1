package virtio

import (
	"sync/atomic"
	"unsafe"
)

// The words of a virtqueue that both sides write while the other reads
// them are the ring indices and the event indices: the available ring's
// flags and idx and its used_event (the driver's), the used ring's idx and
// its avail_event (the device's). A guest's vCPUs write guest memory at
// any moment, from other CPUs, so the device reads and writes those words
// atomically, with Go's sequentially consistent atomics: that orders them
// with the guest's accesses as the spec's memory barriers do (2.7.13.3
// "Updating idx", 2.7.7 "Used Buffer Notification Suppression"), and a
// device's buffers, written before it publishes the used idx, are seen by
// a driver that reads the idx. Everything else in the rings (descriptors,
// ring entries) and the buffers is published by one of those words, and
// read or written plainly.
//
// The fields are 16 bits wide; sync/atomic works on 32-bit words. load16
// and store16 work on the aligned word that holds the field, which stays
// in guest memory: the rings are at least 2-byte aligned (mapRings
// checks), and guest memory is page aligned.

// word returns the aligned 32-bit word holding the 16-bit field at b[0:2],
// and the field's shift in it (x86 is little-endian).
func word(b []byte) (*uint32, uint) {
	p := unsafe.Pointer(unsafe.SliceData(b[:2])) // no read of b: that would not be atomic
	off := uintptr(p) & 3
	return (*uint32)(unsafe.Add(p, -int(off))), uint(off) * 8
}

// load16 atomically reads the 16-bit little-endian field at b[0:2].
func load16(b []byte) uint16 {
	w, shift := word(b)
	return uint16(atomic.LoadUint32(w) >> shift)
}

// store16 atomically writes the 16-bit little-endian field at b[0:2],
// leaving the other half of its word, which the other side may be writing,
// as it is.
func store16(b []byte, v uint16) {
	w, shift := word(b)
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old&^(0xffff<<shift)|uint32(v)<<shift) {
			return
		}
	}
}
