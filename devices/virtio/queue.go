package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Memory is guest RAM as a queue sees it: a bounds-checked window.
type Memory interface {
	// Slice returns the host bytes backing [gpa, gpa+n), or an error if
	// any of it is outside guest RAM.
	Slice(gpa, n uint64) ([]byte, error)
}

// Descriptor flags (2.7.5 The Virtqueue Descriptor Table).
const (
	descFNext     = 1 // the chain continues at Next
	descFWrite    = 2 // device-writable (otherwise device-readable)
	descFIndirect = 4 // the buffer is a table of descriptors
	descSize      = 16

	availFNoInterrupt = 1 // driver: don't interrupt me (without EVENT_IDX)
	usedFNoNotify     = 1 // device: don't notify me (without EVENT_IDX)
)

// MaxQueueSize is the largest queue a split virtqueue can have.
const MaxQueueSize = 32768

// MaxChainBytes bounds the bytes one chain may describe, readable and
// writable together: "Drivers MUST NOT add a descriptor chain longer than
// 2^32 bytes in total" (2.7.5.2). Every descriptor may point at the same
// guest RAM, so without it a chain of 32768 descriptors could ask a device
// for 32768 times the guest's memory; with it, no request asks for more
// than 4 GiB, whatever the guest's size.
const MaxChainBytes = 1 << 32

// ErrBadChain marks a malformed request from the guest: the device must
// stop using the queue and ask for a reset.
var ErrBadChain = errors.New("virtio: malformed descriptor chain")

// Chain is one request: the readable buffers (driver to device) followed by
// the writable ones (device to driver), as slices of guest memory.
type Chain struct {
	Head     uint16
	Readable [][]byte
	Writable [][]byte
}

// ReadableLen and WritableLen total the bytes on each side.
func (c *Chain) ReadableLen() int { return total(c.Readable) }

// WritableLen totals the device-writable bytes.
func (c *Chain) WritableLen() int { return total(c.Writable) }

func total(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}

// Queue is one split virtqueue as the device sees it.
type Queue struct {
	// Set by the driver through the transport before the queue is ready.
	Size       uint16
	DescAddr   uint64
	DriverAddr uint64 // the available ring
	DeviceAddr uint64 // the used ring
	EventIdx   bool   // VIRTIO_RING_F_EVENT_IDX was negotiated

	mem       Memory
	desc      []byte
	avail     []byte
	used      []byte
	nextAvail uint16 // the next available-ring entry to take
	nextUsed  uint16 // the used ring's idx as the device has written it
	lastSent  uint16 // nextUsed when the driver was last interrupted
}

// Activate checks the rings' placement and maps them; the queue then takes
// requests from the start of its rings.
func (q *Queue) Activate(mem Memory) error {
	if err := q.mapRings(mem); err != nil {
		return err
	}
	q.nextAvail, q.nextUsed, q.lastSent = 0, 0, 0
	return nil
}

// mapRings checks the rings' placement and maps them. Ring sizes follow
// 2.7: 16 bytes a descriptor, 6+2n bytes of available ring, 6+8n of used
// ring (with the event-index fields).
func (q *Queue) mapRings(mem Memory) error {
	if q.Size == 0 || q.Size > MaxQueueSize || q.Size&(q.Size-1) != 0 {
		return fmt.Errorf("%w: queue size %d is not a power of 2 up to %d", ErrBadChain, q.Size, MaxQueueSize)
	}
	// The rings' alignment (2.7 "Split Virtqueues"), which the atomic
	// access to their indices relies on (ring_unsafe.go).
	if q.DescAddr%16 != 0 || q.DriverAddr%2 != 0 || q.DeviceAddr%4 != 0 {
		return fmt.Errorf("%w: rings at %#x, %#x, %#x are not aligned to 16, 2 and 4 bytes", ErrBadChain, q.DescAddr, q.DriverAddr, q.DeviceAddr)
	}
	n := uint64(q.Size)
	var err error
	if q.desc, err = mem.Slice(q.DescAddr, descSize*n); err != nil {
		return fmt.Errorf("%w: descriptor table: %v", ErrBadChain, err)
	}
	if q.avail, err = ringSlice(mem, q.DriverAddr, 6+2*n); err != nil {
		return fmt.Errorf("%w: available ring: %v", ErrBadChain, err)
	}
	if q.used, err = ringSlice(mem, q.DeviceAddr, 6+8*n); err != nil {
		return fmt.Errorf("%w: used ring: %v", ErrBadChain, err)
	}
	q.mem = mem
	return nil
}

// ringSlice maps the n bytes of a ring at addr, checking that the rest of
// the 32-bit word its last field is in is guest memory too: load16 and
// store16 access the whole word.
func ringSlice(mem Memory, addr, n uint64) ([]byte, error) {
	b, err := mem.Slice(addr, (addr+n+3)&^3-addr)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// QueueState is a queue as a snapshot holds it: where the driver put its
// rings, and how far the device has gone in them.
type QueueState struct {
	Ready      bool   `json:"ready"`
	Size       uint16 `json:"size"`
	DescAddr   uint64 `json:"desc"`
	DriverAddr uint64 `json:"driver"`
	DeviceAddr uint64 `json:"device"`
	NextAvail  uint16 `json:"next_avail"`
	NextUsed   uint16 `json:"next_used"`
	LastSent   uint16 `json:"last_sent"`
}

// state returns the queue's state.
func (q *Queue) state(ready bool) QueueState {
	return QueueState{Ready: ready, Size: q.Size, DescAddr: q.DescAddr, DriverAddr: q.DriverAddr,
		DeviceAddr: q.DeviceAddr, NextAvail: q.nextAvail, NextUsed: q.nextUsed, LastSent: q.lastSent}
}

// restore sets the queue to s, mapping its rings in mem if it was ready:
// the device goes on where it was.
func (q *Queue) restore(mem Memory, s QueueState) error {
	q.Size, q.DescAddr, q.DriverAddr, q.DeviceAddr = s.Size, s.DescAddr, s.DriverAddr, s.DeviceAddr
	q.nextAvail, q.nextUsed, q.lastSent = s.NextAvail, s.NextUsed, s.LastSent
	if !s.Ready {
		return nil
	}
	return q.mapRings(mem)
}

var le = binary.LittleEndian

// availIdx reads the driver's available-ring index. Like every index both
// sides write, it is read and written atomically (ring_unsafe.go), which
// also orders the ring's other accesses with the guest's.
func (q *Queue) availIdx() uint16 { return load16(q.avail[2:]) }

// Pending reports how many chains the driver has made available that the
// device has not taken. More than the queue size is a driver bug.
func (q *Queue) Pending() (int, error) {
	n := q.availIdx() - q.nextAvail
	if n > q.Size {
		return 0, fmt.Errorf("%w: available index moved by %d on a queue of %d", ErrBadChain, n, q.Size)
	}
	return int(n), nil
}

// Pop takes the next available chain, or returns nil if there is none.
// A malformed chain returns an error wrapping ErrBadChain.
func (q *Queue) Pop() (*Chain, error) {
	n, err := q.Pending()
	if err != nil || n == 0 {
		return nil, err
	}
	// The atomic read of the index orders this read of the entry after it.
	head := le.Uint16(q.avail[4+2*(q.nextAvail%q.Size):])
	q.nextAvail++
	c, err := q.walk(head)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Unpop gives back the chain Pop last returned, unused: a device that took
// a buffer to wait for data (a receive queue) and stops before any came.
// The driver sees nothing; the chain is taken again on the next Pop.
func (q *Queue) Unpop() { q.nextAvail-- }

// walk follows the chain starting at head. A chain may visit at most
// Size descriptors of the table (and an indirect table at most its own
// length): that bound ends any loop a guest builds.
func (q *Queue) walk(head uint16) (*Chain, error) {
	if head >= q.Size {
		return nil, fmt.Errorf("%w: head %d on a queue of %d", ErrBadChain, head, q.Size)
	}
	c := &Chain{Head: head}
	table, count := q.desc, q.Size
	i := head
	indirect := false
	var bytes uint64
	for steps := uint16(0); ; {
		if steps >= count {
			return nil, fmt.Errorf("%w: chain longer than its table (%d): a loop?", ErrBadChain, count)
		}
		steps++
		d := table[descSize*int(i):]
		addr, length := le.Uint64(d), le.Uint32(d[8:])
		flags, next := le.Uint16(d[12:]), le.Uint16(d[14:])

		if flags&descFIndirect != 0 {
			if indirect {
				return nil, fmt.Errorf("%w: nested indirect table", ErrBadChain)
			}
			if flags&descFNext != 0 {
				return nil, fmt.Errorf("%w: indirect descriptor with NEXT", ErrBadChain)
			}
			if length == 0 || length%descSize != 0 || length/descSize > MaxQueueSize {
				return nil, fmt.Errorf("%w: indirect table of %d bytes", ErrBadChain, length)
			}
			t, err := q.mem.Slice(addr, uint64(length))
			if err != nil {
				return nil, fmt.Errorf("%w: indirect table: %v", ErrBadChain, err)
			}
			// Continue in the indirect table, from its first entry.
			table, count, i, steps, indirect = t, uint16(length/descSize), 0, 0, true
			continue
		}

		if bytes += uint64(length); bytes > MaxChainBytes {
			return nil, fmt.Errorf("%w: chain of more than %d bytes", ErrBadChain, uint64(MaxChainBytes))
		}
		buf, err := q.mem.Slice(addr, uint64(length))
		if err != nil {
			return nil, fmt.Errorf("%w: buffer: %v", ErrBadChain, err)
		}
		if flags&descFWrite != 0 {
			c.Writable = append(c.Writable, buf)
		} else {
			if len(c.Writable) > 0 {
				return nil, fmt.Errorf("%w: readable buffer after a writable one", ErrBadChain)
			}
			c.Readable = append(c.Readable, buf)
		}
		if flags&descFNext == 0 {
			return c, nil
		}
		if next >= count {
			return nil, fmt.Errorf("%w: next %d outside a table of %d", ErrBadChain, next, count)
		}
		i = next
	}
}

// Push returns a chain to the driver: written is how many bytes the device
// wrote into its writable buffers.
func (q *Queue) Push(head uint16, written uint32) {
	e := q.used[4+8*int(q.nextUsed%q.Size):]
	le.PutUint32(e, uint32(head))
	le.PutUint32(e[4:], written)
	q.nextUsed++
	// Atomic: the entry, and what the device wrote into the buffers, are
	// visible to the driver before the index that covers them.
	store16(q.used[2:], q.nextUsed)
}

// NeedInterrupt reports whether the driver wants an interrupt for what was
// pushed since the last one (2.7.7.2, 2.7.10). Call it once per batch.
func (q *Queue) NeedInterrupt() bool {
	old, now := q.lastSent, q.nextUsed
	if old == now {
		return false
	}
	q.lastSent = now
	if q.EventIdx {
		usedEvent := load16(q.avail[4+2*int(q.Size):])
		return now-usedEvent-1 < now-old
	}
	return load16(q.avail)&availFNoInterrupt == 0
}

// ArmNotify tells the driver at which available index to notify the
// device next, then reports whether chains arrived meanwhile (in which case
// the caller must keep going rather than wait for a notification that may
// not come).
func (q *Queue) ArmNotify() (more bool, err error) {
	if q.EventIdx {
		store16(q.used[4+8*int(q.Size):], q.nextAvail)
	}
	// The store and the read of the available index are atomics, so the
	// driver either sees the new event index or the device sees its
	// chains.
	n, err := q.Pending()
	return n > 0, err
}
