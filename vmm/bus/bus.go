// Package bus routes guest accesses to devices by address.
//
// An x86 guest reaches devices through two address spaces: 64 KiB of I/O
// ports (the in/out instructions) and memory-mapped I/O, physical addresses
// that are not RAM. When the guest touches either, KVM exits to the VMM with
// the address, size and data; the VMM looks the address up on the bus for
// that space and hands the access to the device that owns the range, as an
// offset inside the device's own window. A device never sees absolute
// addresses, and never knows which bus it is on.
//
// Ranges may not overlap. An access that hits no device is not an error on
// real hardware: reads float to all ones, writes vanish. The bus does the
// same and counts them, so a trace or --stats can show what the guest probed.
// Firecracker's vstate/bus.rs is the model.
package bus

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Device is a register window. Read fills data (1 to 8 bytes) from the
// register at offset; Write stores data there. Both are called from vCPU
// threads, possibly at once: devices do their own locking.
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

// Range is one device's place on a bus.
type Range struct {
	Name   string
	Base   uint64
	Size   uint64
	Device Device
}

func (r Range) end() uint64 { return r.Base + r.Size }

// Bus maps address ranges to devices.
type Bus struct {
	name     string
	mu       sync.RWMutex
	ranges   []Range // sorted by Base, non-overlapping
	unmapped atomic.Uint64
}

// New returns an empty bus; name ("pio", "mmio") appears in errors.
func New(name string) *Bus { return &Bus{name: name} }

// Insert places d at [base, base+size). It refuses empty or wrapping
// ranges and any overlap with a device already there.
func (b *Bus) Insert(name string, base, size uint64, d Device) error {
	if size == 0 || base+size < base {
		return fmt.Errorf("%s bus: %s: bad range %#x+%#x", b.name, name, base, size)
	}
	r := Range{Name: name, Base: base, Size: size, Device: d}
	b.mu.Lock()
	defer b.mu.Unlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].Base >= base })
	if i > 0 && b.ranges[i-1].end() > base {
		o := b.ranges[i-1]
		return fmt.Errorf("%s bus: %s at %#x+%#x overlaps %s at %#x+%#x", b.name, name, base, size, o.Name, o.Base, o.Size)
	}
	if i < len(b.ranges) && r.end() > b.ranges[i].Base {
		o := b.ranges[i]
		return fmt.Errorf("%s bus: %s at %#x+%#x overlaps %s at %#x+%#x", b.name, name, base, size, o.Name, o.Base, o.Size)
	}
	b.ranges = append(b.ranges, Range{})
	copy(b.ranges[i+1:], b.ranges[i:])
	b.ranges[i] = r
	return nil
}

// Find returns the range holding the whole access [addr, addr+n).
func (b *Bus) Find(addr uint64, n int) (Range, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].end() > addr })
	if i < len(b.ranges) {
		r := b.ranges[i]
		if addr >= r.Base && addr+uint64(n) <= r.end() && addr+uint64(n) >= addr {
			return r, true
		}
	}
	return Range{}, false
}

// Read performs a guest read. It returns the device's name, or "" if no
// device holds the address; then data is filled with 0xff.
func (b *Bus) Read(addr uint64, data []byte) string {
	if r, ok := b.Find(addr, len(data)); ok {
		r.Device.Read(addr-r.Base, data)
		return r.Name
	}
	for i := range data {
		data[i] = 0xff
	}
	b.unmapped.Add(1)
	return ""
}

// Write performs a guest write. It returns the device's name, or "" if no
// device holds the address; then the write is dropped.
func (b *Bus) Write(addr uint64, data []byte) string {
	if r, ok := b.Find(addr, len(data)); ok {
		r.Device.Write(addr-r.Base, data)
		return r.Name
	}
	b.unmapped.Add(1)
	return ""
}

// Unmapped returns how many accesses hit no device.
func (b *Bus) Unmapped() uint64 { return b.unmapped.Load() }

// Ranges returns a copy of the bus's ranges in address order.
func (b *Bus) Ranges() []Range {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return append([]Range(nil), b.ranges...)
}
