package virtio

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/memory"
)

// Helpers shared by the device fuzz targets.

// fuzzIRQ counts interrupts; device goroutines raise them concurrently.
type fuzzIRQ struct{ n atomic.Int64 }

func (i *fuzzIRQ) Trigger() error { i.n.Add(1); return nil }

// boundedMem is guest memory that checks every window it hands out: inside
// the backing slice, and capped, so a device cannot grow a buffer past
// what its descriptor said.
type boundedMem struct {
	t   *testing.T
	g   *memory.Guest
	raw []byte
}

func newBoundedMem(t *testing.T, raw []byte) *boundedMem {
	return &boundedMem{t: t, g: memory.FromBytes(raw), raw: raw}
}

func (m *boundedMem) Slice(gpa, n uint64) ([]byte, error) {
	b, err := m.g.Slice(gpa, n)
	if err != nil {
		return nil, err
	}
	if gpa+n > uint64(len(m.raw)) || uint64(len(b)) != n || uint64(cap(b)) != n {
		// Errorf, not Fatalf: this runs on device goroutines.
		m.t.Errorf("Slice(%#x, %#x) gave %d bytes (cap %d) in %d of memory", gpa, n, len(b), cap(b), len(m.raw))
		return nil, memory.ErrOutOfRange
	}
	return b, nil
}

// within runs f and fails the test if it has not returned by the deadline,
// with every goroutine's stack to show where it hangs.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%s did not return within %v: a hang\n%s", what, d, buf)
	}
}

// noGoroutinesAbove waits until at most base goroutines run: the device
// left none behind.
func noGoroutinesAbove(t *testing.T, base int, what string) {
	t.Helper()
	start := time.Now()
	for runtime.NumGoroutine() > base {
		switch waited := time.Since(start); {
		case waited > 3*time.Second:
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%s: %d goroutines left, %d before\n%s", what, runtime.NumGoroutine(), base, buf)
		case waited < time.Millisecond:
			runtime.Gosched() // they are usually about to return
		default:
			time.Sleep(time.Millisecond)
		}
	}
}

// FuzzTransport drives a virtio-mmio Transport as a hostile driver would:
// the input is a memory image (descriptor tables, rings, buffers) and a
// list of operations, 8 bytes each:
//
//	byte 0     kind: 0 register read, 1 register write, 2 kick, 3 memory write
//	bytes 1-2  offset in the device window (mod 0x1000) or guest address
//	byte 3     width: 1, 2, 4 or 8 bytes
//	bytes 4-7  value (little endian)
//
// at most 512 of them, in front of device kind%5: rng, block on a temp
// image (read-only if bit 7 of kind is set), vsock on a temp socket with
// a host program listening on one port, net on a back end with one frame
// to receive, 9P on a server that answers every request with an error.
// Nothing may panic or hang, every window of guest memory a device gets
// must lie inside the slice, and the final reset (status 0) must return
// with the device's goroutines gone.
func FuzzTransport(f *testing.F) {
	for kind := range uint8(fuzzDeviceKinds) {
		mem, ops := transportSeed(kind)
		f.Add(kind, mem, ops)
	}
	f.Add(uint8(0), []byte{}, []byte{})

	dir := f.TempDir()
	img := filepath.Join(dir, "disk.img")
	writeImage(f, img, 16*SectorSize)
	var n atomic.Int64

	f.Fuzz(func(t *testing.T, kind uint8, image, ops []byte) {
		const maxOps = 512
		if len(ops) > 8*maxOps {
			ops = ops[:8*maxOps]
		}
		base := runtime.NumGoroutine()
		raw := make([]byte, fuzzMemSize)
		copy(raw, image)
		mem := newBoundedMem(t, raw)

		dev, closeDev := fuzzDevice(t, kind, img, filepath.Join(dir, fmt.Sprintf("v%d.sock", n.Add(1))))
		tr := NewTransport(dev, mem, &fuzzIRQ{})

		within(t, 5*time.Second, "the operations", func() { applyOps(tr, raw, ops) })
		within(t, 5*time.Second, "the reset (status 0)", func() {
			tr.Write(RegStatus, []byte{0, 0, 0, 0})
		})
		if s := tr.Status(); s != 0 {
			t.Fatalf("status %#x after reset", s)
		}
		closeDev()
		noGoroutinesAbove(t, base, "after reset")
	})
}

// applyOps carries out FuzzTransport's operations.
func applyOps(tr *Transport, raw, ops []byte) {
	for ; len(ops) >= 8; ops = ops[8:] {
		off := uint64(binary.LittleEndian.Uint16(ops[1:]))
		width := 1 << (ops[3] % 4)
		val := binary.LittleEndian.Uint32(ops[4:])
		data := make([]byte, 8)
		binary.LittleEndian.PutUint32(data, val)
		binary.LittleEndian.PutUint32(data[4:], val)
		data = data[:width]
		switch ops[0] % 4 {
		case 0:
			tr.Read(off%0x1000, data)
		case 1:
			tr.Write(off%0x1000, data)
		case 2:
			tr.Kick(int(val % 4))
		case 3:
			copy(raw[off%uint64(len(raw)):], data)
		}
	}
}

const (
	fuzzMemSize     = 64 << 10
	fuzzDeviceKinds = 5
)

// fuzzDevice makes device kind%5 (see FuzzTransport).
func fuzzDevice(t *testing.T, kind uint8, img, sock string) (Device, func()) {
	switch kind % fuzzDeviceKinds {
	case 0:
		return NewRNG(), func() {}
	case 1:
		b, err := NewBlock(img, kind&0x80 != 0, "fuzz")
		if err != nil {
			t.Fatal(err)
		}
		return b, func() { b.Close() }
	case 2:
		host := newFuzzHost(t, fmt.Sprint(sock, "_", fuzzVsockPort), false)
		v, err := NewVsock(3, sock)
		if err != nil {
			t.Fatal(err)
		}
		return v, func() { v.Close(); host.close(0) }
	case 3:
		b := &chanBackend{frames: make(chan []byte, 1)}
		b.frames <- append(make([]byte, NetHeaderLen), "a frame from the host"...)
		n, err := NewNet(b, []byte{2, 0, 0, 0, 0, 1})
		if err != nil {
			t.Fatal(err)
		}
		return n, func() { n.Close() }
	default:
		p, err := NewP9("fuzz", errorServer{})
		if err != nil {
			t.Fatal(err)
		}
		return p, func() {}
	}
}

// chanBackend is a network back end in memory: frames to receive come
// from a channel, sent frames are dropped.
type chanBackend struct{ frames chan []byte }

func (b *chanBackend) WriteFrame(bufs [][]byte) error { return nil }
func (b *chanBackend) SetOffload(_, _, _ bool) error  { return nil }
func (b *chanBackend) Close() error                   { return nil }

func (b *chanBackend) ReadFrame(bufs [][]byte, stop <-chan struct{}) (int, error) {
	select {
	case f := <-b.frames:
		n := 0
		for _, buf := range bufs {
			n += copy(buf, f[n:])
		}
		return n, nil
	case <-stop:
		return 0, errors.New("stopped")
	}
}

// errorServer answers every 9P request with Rlerror(EIO).
type errorServer struct{}

func (errorServer) Reset()          {}
func (errorServer) InSession() bool { return false }

func (errorServer) SaveSession() (json.RawMessage, error) { return nil, nil }
func (errorServer) RestoreSession(json.RawMessage) error  { return nil }

func (errorServer) Handle(req []byte, room int) []byte {
	r := []byte{11, 0, 0, 0, 7, 0xff, 0xff, 5, 0, 0, 0} // size, Rlerror, tag, EIO
	if len(req) >= 7 {
		copy(r[5:7], req[5:7])
	}
	return r
}

// The seeds' memory layout: queue q's descriptor table at 0x1000*q, its
// available ring at 0x4000+0x100*q, its used ring at 0x5000+0x100*q;
// buffers from 0x6000.
const (
	seedQueueSize = 16
	seedBuffers   = 0x6000
)

func seedDesc(q int) uint64  { return uint64(q) * 0x1000 }
func seedAvail(q int) uint64 { return 0x4000 + uint64(q)*0x100 }
func seedUsed(q int) uint64  { return 0x5000 + uint64(q)*0x100 }

// mmioOps encodes operations in FuzzTransport's format.
type mmioOps []byte

func (o *mmioOps) op(kind byte, off uint16, width byte, v uint32) {
	b := []byte{kind, 0, 0, width, 0, 0, 0, 0}
	binary.LittleEndian.PutUint16(b[1:], off)
	binary.LittleEndian.PutUint32(b[4:], v)
	*o = append(*o, b...)
}
func (o *mmioOps) read(off uint16)            { o.op(0, off, 2, 0) }
func (o *mmioOps) write(off uint16, v uint32) { o.op(1, off, 2, v) }
func (o *mmioOps) kick(q int)                 { o.op(2, 0, 2, uint32(q)) }

// initSequence is what Linux's virtio_mmio driver does: identify the
// device, negotiate VERSION_1 (and the ring features), set up the queues
// of seedQueueSize entries, and set DRIVER_OK.
func initSequence(queues ...int) mmioOps {
	var o mmioOps
	o.read(RegMagicValue)
	o.read(RegVersion)
	o.read(RegDeviceID)
	o.write(RegStatus, StatusAcknowledge)
	o.write(RegStatus, StatusAcknowledge|StatusDriver)
	o.write(RegDeviceFeaturesSel, 1)
	o.read(RegDeviceFeatures)
	o.write(RegDeviceFeaturesSel, 0)
	o.read(RegDeviceFeatures)
	o.write(RegDriverFeaturesSel, 1)
	o.write(RegDriverFeatures, uint32(CommonFeatures>>32))
	o.write(RegDriverFeaturesSel, 0)
	o.write(RegDriverFeatures, uint32(CommonFeatures&0xffffffff))
	o.write(RegStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK)
	o.read(RegStatus)
	for _, q := range queues {
		o.write(RegQueueSel, uint32(q))
		o.read(RegQueueReady)
		o.read(RegQueueNumMax)
		o.write(RegQueueNum, seedQueueSize)
		o.write(RegQueueDescLow, uint32(seedDesc(q)))
		o.write(RegQueueDescHigh, 0)
		o.write(RegQueueDriverLow, uint32(seedAvail(q)))
		o.write(RegQueueDriverHigh, 0)
		o.write(RegQueueDeviceLow, uint32(seedUsed(q)))
		o.write(RegQueueDeviceHigh, 0)
		o.write(RegQueueReady, 1)
	}
	o.write(RegStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK)
	return o
}

// seedMem builds a memory image with chains published on queues.
type seedMem struct {
	raw  []byte
	heap uint64
	next [3]uint16 // next free descriptor of each queue
	idx  [3]uint16 // available index of each queue
}

func newSeedMem(raw []byte) *seedMem { return &seedMem{raw: raw, heap: seedBuffers} }

// descr is one descriptor of a chain.
type descr struct {
	addr  uint64
	n     uint32
	write bool
}

// put copies data into the next free bytes (n of them, at least len(data))
// and returns their address.
func (m *seedMem) put(data []byte, n int) uint64 {
	a := m.heap
	copy(m.raw[a:], data)
	m.heap += uint64(max(n, len(data))+15) &^ 15
	return a
}

// publish links ds into a chain on queue q and makes it available.
func (m *seedMem) publish(q int, ds ...descr) {
	head := m.next[q] % seedQueueSize
	for i, d := range ds {
		var flags uint16
		if d.write {
			flags = descFWrite
		}
		if i < len(ds)-1 {
			flags |= descFNext
		}
		e := m.raw[seedDesc(q)+16*uint64(m.next[q]%seedQueueSize):]
		m.next[q]++
		binary.LittleEndian.PutUint64(e, d.addr)
		binary.LittleEndian.PutUint32(e[8:], d.n)
		binary.LittleEndian.PutUint16(e[12:], flags)
		binary.LittleEndian.PutUint16(e[14:], m.next[q]%seedQueueSize)
	}
	av := m.raw[seedAvail(q):]
	binary.LittleEndian.PutUint16(av[4+2*(m.idx[q]%seedQueueSize):], head)
	m.idx[q]++
	store16(av[2:], m.idx[q]) // atomic, as the device reads it (ring_unsafe.go)
}

// chain publishes bufs as one chain on queue q.
func (m *seedMem) chain(q int, bufs ...buf) {
	var ds []descr
	for _, b := range bufs {
		n := len(b.data)
		if b.write {
			n = b.n
		}
		ds = append(ds, descr{m.put(b.data, n), uint32(n), b.write})
	}
	m.publish(q, ds...)
}

// image trims the memory image after the last buffer.
func (m *seedMem) image() []byte { return m.raw[:m.heap] }

// transportSeed is a driver's first session with device kind: the init
// sequence, requests that reach the device's main paths, and an
// interrupt acknowledgement.
func transportSeed(kind uint8) ([]byte, []byte) {
	m := newSeedMem(make([]byte, fuzzMemSize))
	var o mmioOps
	switch kind % fuzzDeviceKinds {
	case 0: // rng: two buffers to fill
		o = initSequence(0)
		m.chain(0, buf{n: 16, write: true})
		m.chain(0, buf{n: 8, write: true}, buf{n: 8, write: true})
		o.kick(0)
	case 1: // block: read a sector, write one, flush, get the ID
		o = initSequence(0)
		m.chain(0, buf{data: header(blkTIn, 1)}, buf{n: SectorSize, write: true}, buf{n: 1, write: true})
		m.chain(0, buf{data: header(blkTOut, 2)}, buf{data: make([]byte, SectorSize)}, buf{n: 1, write: true})
		m.chain(0, buf{data: header(blkTFlush, 0)}, buf{n: 1, write: true})
		m.chain(0, buf{data: header(blkTGetID, 0)}, buf{n: blkIDLen, write: true}, buf{n: 1, write: true})
		o.kick(0)
		o.read(RegConfig)
	case 3: // net: a frame to send, a buffer for the frame the back end has
		o = initSequence(0, 1)
		m.chain(0, buf{n: 1514 + NetHeaderLen, write: true})
		m.chain(1, buf{data: make([]byte, NetHeaderLen)}, buf{data: []byte("a frame from the guest")})
		o.kick(0)
		o.kick(1)
		o.read(RegConfig)
	case 4: // 9P: a Tversion, and room for the reply
		o = initSequence(0)
		tversion := []byte{19, 0, 0, 0, 100, 0xff, 0xff, 0, 32, 0, 0, 6, 0}
		m.chain(0, buf{data: append(tversion, "9P2000"...)}, buf{n: 64, write: true})
		o.kick(0)
		o.read(RegConfig)
	default: // vsock: receive buffers, then a request nobody listens for (RST)
		o = initSequence(0, 1, 2)
		m.chain(0, buf{n: vsockHdrLen + 64, write: true})
		m.chain(0, buf{n: vsockHdrLen + 64, write: true})
		m.chain(1, buf{data: vsockHdr(1000, fuzzVsockPort+1, vsockOpRequest, 0, nil)})
		m.chain(1, buf{data: vsockHdr(1000, fuzzVsockPort+1, vsockOpRW, 0, []byte("data"))})
		o.kick(0)
		o.kick(1)
		o.read(RegConfig)
	}
	o.read(RegInterruptStatus)
	o.write(RegInterruptACK, InterruptUsedBuffer)
	return m.image(), o
}

// writeImage makes a disk image of size bytes, each sector filled with
// its number.
func writeImage(tb testing.TB, path string, size int) {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i / SectorSize)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestTransportSeeds checks that FuzzTransport's seeds do what they are
// for: each device takes and returns every chain the seed publishes.
func TestTransportSeeds(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	writeImage(t, img, 16*SectorSize)
	for kind, want := range map[uint8][]uint16{0: {2}, 1: {4}, 2: {2, 2}, 3: {1, 1}, 4: {1}} {
		image, ops := transportSeed(kind)
		raw := make([]byte, fuzzMemSize)
		copy(raw, image)
		dev, closeDev := fuzzDevice(t, kind, img, filepath.Join(t.TempDir(), "v.sock"))
		tr := NewTransport(dev, newBoundedMem(t, raw), &fuzzIRQ{})
		applyOps(tr, raw, ops)
		for q, n := range want {
			require.Eventually(t, func() bool {
				return load16(raw[seedUsed(q)+2:]) == n
			}, testWait, pollEvery, "%v queue %d: %d chains used", dev.Type(), q, n)
		}
		require.Zero(t, tr.Status()&StatusDeviceNeedsReset, "%v", dev.Type())
		if kind == 1 {
			// The read request's status and data.
			require.EqualValues(t, blkSOK, raw[seedBuffers+16+SectorSize])
			require.EqualValues(t, 1, raw[seedBuffers+16])
		}
		if kind == 3 {
			// The back end's frame, with num_buffers set.
			require.Equal(t, "a frame from the host", string(raw[seedBuffers+NetHeaderLen:][:21]))
			require.EqualValues(t, 1, binary.LittleEndian.Uint16(raw[seedBuffers+10:]))
		}
		if kind == 4 {
			// An Rlerror with the Tversion's tag.
			reply := raw[seedBuffers+32:]
			require.Equal(t, []byte{11, 0, 0, 0, 7, 0xff, 0xff}, reply[:7])
		}
		if kind == 2 {
			// Both vsock packets were answered with a reset.
			for _, a := range []uint64{seedBuffers, seedBuffers + (vsockHdrLen+64+15)&^15} {
				require.EqualValues(t, vsockOpRST, binary.LittleEndian.Uint16(raw[a+30:]))
			}
		}
		tr.Write(RegStatus, []byte{0, 0, 0, 0})
		closeDev()
	}
}
