package main

import (
	"encoding/binary"
	"time"
)

// A virtio driver of the attacker's own: it programs a taken device's
// registers and lays out its queues in the arena, where it can write any
// descriptor it likes. Every write the device makes lands in the arena:
// a device-writable buffer is never anything but arena memory, or an
// address outside RAM that kiln must refuse.

// virtio-mmio registers (VIRTIO 1.2, 4.2.2) and status bits (2.1).
const (
	regMagic          = 0x000
	regVersion        = 0x004
	regDeviceID       = 0x008
	regDeviceFeatures = 0x010
	regDeviceFeatSel  = 0x014
	regDriverFeatures = 0x020
	regDriverFeatSel  = 0x024
	regQueueSel       = 0x030
	regQueueNumMax    = 0x034
	regQueueNum       = 0x038
	regQueueReady     = 0x044
	regQueueNotify    = 0x050
	regInterruptStat  = 0x060
	regInterruptACK   = 0x064
	regStatus         = 0x070
	regQueueDescLow   = 0x080
	regQueueDescHigh  = 0x084
	regQueueDrvLow    = 0x090
	regQueueDrvHigh   = 0x094
	regQueueDevLow    = 0x0a0
	regQueueDevHigh   = 0x0a4
	regConfigGen      = 0x0fc
	regConfig         = 0x100

	stAck        = 1
	stDriver     = 2
	stDriverOK   = 4
	stFeaturesOK = 8
	stNeedsReset = 64
	stFailed     = 128

	featIndirect = 1 << 28
	featEventIdx = 1 << 29
	featVersion1 = 1 << 32

	descNext     = 1
	descWrite    = 2
	descIndirect = 4
)

// le is binary.LittleEndian. (u-root's busybox build turns package
// variables into ones of a named type, which binary.LittleEndian's
// unexported type cannot be.)
var le = struct {
	binary.ByteOrder
	binary.AppendByteOrder
}{binary.LittleEndian, binary.LittleEndian}

// vq is one queue as the attacker lays it out: three arena pages, one
// each for the descriptor table, the available and the used ring (a queue
// of up to 256 entries fits; the devices offer at most that).
type vq struct {
	n                    int
	size                 uint16
	desc, avail, used    []byte
	descP, availP, usedP uint64
	next, idx, seen      uint16
}

// dev is a taken device.
type dev struct {
	w       *window
	a       *arena
	offered uint64
	maxes   []uint16 // QueueNumMax of each queue
	qs      []*vq

	small  []int // arena pages for rings and small buffers
	heap   int   // next small page for buffers
	heapAt int   // offset in it
}

// queuePages is how many small pages the rings take: three queues at most.
const queuePages = 9

func newDev(w *window, a *arena, small []int) *dev {
	d := &dev{w: w, a: a, small: small}
	d.w32(regDeviceFeatSel, 0)
	lo := d.r32(regDeviceFeatures)
	d.w32(regDeviceFeatSel, 1)
	d.offered = uint64(d.r32(regDeviceFeatures))<<32 | uint64(lo)
	for q := 0; q < 8; q++ {
		d.w32(regQueueSel, uint32(q))
		m := d.r32(regQueueNumMax)
		if m == 0 {
			break
		}
		d.maxes = append(d.maxes, uint16(min(m, 256)))
	}
	for q := range d.maxes {
		v := &vq{n: q}
		v.desc, v.descP = a.page(small[3*q])
		v.avail, v.availP = a.page(small[3*q+1])
		v.used, v.usedP = a.page(small[3*q+2])
		d.qs = append(d.qs, v)
	}
	return d
}

func (d *dev) r32(off int) uint32      { return uint32(mmioRead(d.w.regs, off, 4)) }
func (d *dev) w32(off int, v uint32)   { mmioWrite(d.w.regs, off, 4, uint64(v)) }
func (d *dev) status() uint32          { return d.r32(regStatus) }
func (d *dev) needsReset() bool        { return d.status()&stNeedsReset != 0 }
func (d *dev) notify(q int)            { d.w32(regQueueNotify, uint32(q)) }
func (d *dev) config32(off int) uint32 { return d.r32(regConfig + off) }

// reset writes 0 to Status; kiln stops the device's work before the write
// returns. The rings and the buffer heap start afresh.
func (d *dev) reset() {
	d.w32(regStatus, 0)
	for _, q := range d.qs {
		clear(q.desc)
		clear(q.avail)
		clear(q.used)
		q.next, q.idx, q.seen = 0, 0, 0
	}
	d.heap, d.heapAt = 0, 0
}

// layout says how the driver sets a device up; the zero value is a
// driver that does everything right.
type layout struct {
	features   uint64         // 0: what the device offers, less EVENT_IDX
	sizes      map[int]uint32 // QueueNum to write instead of the maximum
	skipFeatOK bool
	noDriverOK bool
	// ring addresses to use instead of the arena's, per queue (0: arena)
	descAt, availAt, usedAt map[int]uint64
	notReady                map[int]bool
}

// setup resets the device and initializes it as l says; it returns the
// status read back at the end.
func (d *dev) setup(l layout) uint32 {
	d.reset()
	d.w32(regStatus, stAck)
	d.w32(regStatus, stAck|stDriver)
	f := l.features
	if f == 0 {
		f = d.offered &^ featEventIdx
	}
	d.w32(regDriverFeatSel, 0)
	d.w32(regDriverFeatures, uint32(f))
	d.w32(regDriverFeatSel, 1)
	d.w32(regDriverFeatures, uint32(f>>32))
	st := uint32(stAck | stDriver)
	if !l.skipFeatOK {
		st |= stFeaturesOK
		d.w32(regStatus, st)
	}
	for i, q := range d.qs {
		num, odd := l.sizes[i]
		if !odd {
			num = uint32(d.maxes[i])
		}
		q.size = d.maxes[i] // the attacker's own view: a queue it never fills
		d.w32(regQueueSel, uint32(i))
		d.w32(regQueueNum, num)
		d.setAddr(regQueueDescLow, pick(l.descAt, i, q.descP))
		d.setAddr(regQueueDrvLow, pick(l.availAt, i, q.availP))
		d.setAddr(regQueueDevLow, pick(l.usedAt, i, q.usedP))
		if !l.notReady[i] {
			d.w32(regQueueReady, 1)
		}
	}
	if !l.noDriverOK {
		d.w32(regStatus, st|stDriverOK)
	}
	return d.status()
}

func pick(m map[int]uint64, i int, def uint64) uint64 {
	if a, ok := m[i]; ok {
		return a
	}
	return def
}

// setAddr writes a 64-bit queue address to a Low/High register pair.
func (d *dev) setAddr(low int, a uint64) {
	d.w32(low, uint32(a))
	d.w32(low+4, uint32(a>>32))
}

// buf returns n bytes (at most a page) of fresh arena memory.
func (d *dev) buf(n int) ([]byte, uint64) {
	n = min(n, pageSize)
	pages := len(d.small) - queuePages
	if d.heapAt+n > pageSize {
		d.heap, d.heapAt = d.heap+1, 0
	}
	if d.heap >= pages {
		d.heap = 0 // reuse: a scenario never needs the whole pool
	}
	v, p := d.a.page(d.small[queuePages+d.heap])
	b := v[d.heapAt : d.heapAt+n]
	clear(b)
	pa := p + uint64(d.heapAt)
	d.heapAt += (n + 15) &^ 15
	return b, pa
}

// data copies b into arena memory and returns its address.
func (d *dev) data(b []byte) uint64 {
	m, p := d.buf(len(b))
	copy(m, b)
	return p
}

// big returns the arena's physically contiguous run.
func (d *dev) big() ([]byte, uint64) {
	v := d.a.virt[d.a.bigFirst*pageSize : (d.a.bigFirst+d.a.bigPages)*pageSize]
	return v, d.a.phys[d.a.bigFirst]
}

// desc is one descriptor as the attacker writes it.
type desc struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

// put writes descriptor e at slot i of q's table.
func (q *vq) put(i uint16, e desc) {
	b := q.desc[16*int(i%q.size):]
	le.PutUint64(b, e.addr)
	le.PutUint32(b[8:], e.len)
	le.PutUint16(b[12:], e.flags)
	le.PutUint16(b[14:], e.next)
}

// chain writes es as one chain in consecutive free slots (NEXT and next
// filled in, unless an entry already has its own next or is the last) and
// returns its head.
func (q *vq) chain(es ...desc) uint16 {
	head := q.next % q.size
	for i, e := range es {
		slot := q.next % q.size
		q.next++
		if i < len(es)-1 && e.flags&descIndirect == 0 {
			e.flags |= descNext
			if e.next == 0 {
				e.next = q.next % q.size
			}
		}
		q.put(slot, e)
	}
	return head
}

// publish puts head in the available ring and moves its index.
func (q *vq) publish(head uint16) {
	le.PutUint16(q.avail[4+2*int(q.idx%q.size):], head)
	q.idx++
	le.PutUint16(q.avail[2:], q.idx)
}

// usedIdx is the device's used index.
func (q *vq) usedIdx() uint16 { return le.Uint16(q.used[2:]) }

// usedEntry returns used entry k (id, len).
func (q *vq) usedEntry(k uint16) (uint32, uint32) {
	e := q.used[4+8*int(k%q.size):]
	return le.Uint32(e), le.Uint32(e[4:])
}

// outcome is what a device did with what it was given.
type outcome int

const (
	outNothing    outcome = iota // no used buffer, no reset request (yet)
	outUsed                      // the device returned buffers
	outNeedsReset                // the device asked for a reset
)

func (o outcome) String() string {
	return [...]string{"nothing", "used", "needs-reset"}[o]
}

// wait waits up to d for q's used index to pass want, or for the device
// to ask for a reset.
func (dv *dev) wait(q *vq, want uint16, d time.Duration) outcome {
	deadline := time.Now().Add(d)
	for {
		if q != nil && int16(q.usedIdx()-want) >= 0 {
			return outUsed
		}
		if dv.needsReset() {
			return outNeedsReset
		}
		if time.Now().After(deadline) {
			return outNothing
		}
		time.Sleep(200 * time.Microsecond)
	}
}
