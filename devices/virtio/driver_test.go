package virtio

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/devices"
	"github.com/kiln-vmm/kiln/vmm/memory"
)

// fakeDriver is a guest driver in a byte slice: it lays out a descriptor
// table, an available ring and a used ring in "guest memory", and talks to
// a Transport through its registers, as Linux's virtio_mmio driver would.
type fakeDriver struct {
	t     *testing.T
	mem   *memory.Guest
	raw   []byte
	tr    *Transport
	irq   *devices.CountingInterrupt
	size  uint16
	desc  uint64
	avail uint64
	used  uint64
	next  uint16 // next free descriptor
	idx   uint16 // our available idx
	heap  uint64 // next free buffer address
	seen  uint16 // used entries consumed
}

const testMemSize = 1 << 20

func newDriver(t *testing.T, dev Device) *fakeDriver {
	raw := make([]byte, testMemSize)
	d := &fakeDriver{t: t, raw: raw, mem: memory.FromBytes(raw), irq: &devices.CountingInterrupt{},
		desc: 0x1000, avail: 0x3000, used: 0x4000, heap: 0x10000}
	d.tr = NewTransport(dev, d.mem, d.irq)
	return d
}

func (d *fakeDriver) w32(off uint64, v uint32) {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	d.tr.Write(off, b)
}

func (d *fakeDriver) r32(off uint64) uint32 {
	b := make([]byte, 4)
	d.tr.Read(off, b)
	return binary.LittleEndian.Uint32(b)
}

// setup negotiates features (all offered, or want) and sets up queue 0
// with size entries, then sets DRIVER_OK.
func (d *fakeDriver) setup(size uint16, want uint64) {
	require.EqualValues(d.t, magic, d.r32(RegMagicValue))
	require.EqualValues(d.t, 2, d.r32(RegVersion))
	d.w32(RegStatus, StatusAcknowledge|StatusDriver)
	d.w32(RegDeviceFeaturesSel, 0)
	lo := d.r32(RegDeviceFeatures)
	d.w32(RegDeviceFeaturesSel, 1)
	hi := d.r32(RegDeviceFeatures)
	offered := uint64(hi)<<32 | uint64(lo)
	if want == 0 {
		want = offered
	}
	d.w32(RegDriverFeaturesSel, 0)
	d.w32(RegDriverFeatures, uint32(want))
	d.w32(RegDriverFeaturesSel, 1)
	d.w32(RegDriverFeatures, uint32(want>>32))
	d.w32(RegStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK)
	require.NotZero(d.t, d.r32(RegStatus)&StatusFeaturesOK, "features refused")
	for q := 0; q < d.tr.NumQueues(); q++ {
		d.w32(RegQueueSel, uint32(q))
		require.GreaterOrEqual(d.t, d.r32(RegQueueNumMax), uint32(size))
		d.w32(RegQueueNum, uint32(size))
		base := uint64(q) * 0x4000
		d.w32(RegQueueDescLow, uint32(d.desc+base))
		d.w32(RegQueueDescHigh, 0)
		d.w32(RegQueueDriverLow, uint32(d.avail+base))
		d.w32(RegQueueDriverHigh, 0)
		d.w32(RegQueueDeviceLow, uint32(d.used+base))
		d.w32(RegQueueDeviceHigh, 0)
		d.w32(RegQueueReady, 1)
	}
	d.w32(RegQueueSel, 0)
	d.size = size
	d.w32(RegStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK)
}

type buf struct {
	data  []byte // contents for a readable buffer
	n     int    // size for a writable buffer
	write bool
}

// alloc copies data into guest memory and returns its address.
func (d *fakeDriver) alloc(data []byte, n int) uint64 {
	a := d.heap
	copy(d.raw[a:], data)
	d.heap += uint64(max(n, len(data))+15) &^ 15
	return a
}

func (d *fakeDriver) putDesc(table uint64, i uint16, addr uint64, n uint32, flags, next uint16) {
	e := d.raw[table+16*uint64(i):]
	binary.LittleEndian.PutUint64(e, addr)
	binary.LittleEndian.PutUint32(e[8:], n)
	binary.LittleEndian.PutUint16(e[12:], flags)
	binary.LittleEndian.PutUint16(e[14:], next)
}

// submit chains bufs through the descriptor table, publishes the chain and
// kicks queue 0. It returns the buffers' guest addresses.
func (d *fakeDriver) submit(bufs ...buf) []uint64 {
	head := d.next
	var addrs []uint64
	for i, b := range bufs {
		n := len(b.data)
		flags := uint16(0)
		if b.write {
			n, flags = b.n, descFWrite
		}
		a := d.alloc(b.data, n)
		addrs = append(addrs, a)
		idx := d.next % d.size
		d.next++
		if i < len(bufs)-1 {
			flags |= descFNext
		}
		d.putDesc(d.desc, idx, a, uint32(n), flags, d.next%d.size)
	}
	d.publish(head % d.size)
	return addrs
}

// publish puts a chain's head in the available ring, then moves the
// ring's index. The index is guest memory the device reads while the
// driver writes it, as a guest's vCPU would: the driver writes it
// atomically, as the device reads it (ring_unsafe.go), and that orders
// the entry and the descriptors before it.
func (d *fakeDriver) publish(head uint16) {
	binary.LittleEndian.PutUint16(d.raw[d.avail+4+2*uint64(d.idx%d.size):], head)
	d.idx++
	store16(d.raw[d.avail+2:], d.idx)
	d.tr.Kick(0)
}

// wait returns the next used entry (head, written length), once the
// device's atomic write of the used index covers it.
func (d *fakeDriver) wait() (uint16, uint32) {
	deadline := time.Now().Add(5 * time.Second)
	for load16(d.raw[d.used+2:]) == d.seen {
		if time.Now().After(deadline) {
			d.t.Fatalf("device did not return a buffer (status %#x)", d.tr.Status())
		}
		time.Sleep(time.Millisecond)
	}
	e := d.raw[d.used+4+8*uint64(d.seen%d.size):]
	d.seen++
	return uint16(binary.LittleEndian.Uint32(e)), binary.LittleEndian.Uint32(e[4:])
}

// waitNeedsReset waits for the device to report a broken queue.
func (d *fakeDriver) waitNeedsReset() {
	deadline := time.Now().Add(5 * time.Second)
	for d.r32(RegStatus)&StatusDeviceNeedsReset == 0 {
		if time.Now().After(deadline) {
			d.t.Fatal("device did not set DEVICE_NEEDS_RESET")
		}
		time.Sleep(time.Millisecond)
	}
	require.NotZero(d.t, d.r32(RegInterruptStatus)&InterruptConfigChange)
}
