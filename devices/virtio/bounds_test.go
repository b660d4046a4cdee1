package virtio

// Tests of the resource bounds a guest cannot push kiln past
// (docs/reliability.md, "Resource bounds"): each drives a device past its
// bound, as a hostile guest would, and checks that kiln's memory,
// goroutines or work stay within it.

import (
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/memory"
)

// allocated returns the bytes f allocated on the Go heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// repeated returns n buffers that are all buf: a chain that describes
// n*len(buf) bytes, as a guest's chain of descriptors that all point at
// the same guest RAM does.
func repeated(buf []byte, n int) [][]byte {
	bs := make([][]byte, n)
	for i := range bs {
		bs[i] = buf
	}
	return bs
}

// TestBlockDiscardCopiesAtMostItsSegments: a discard or write-zeroes
// request whose chain describes 64 MiB of ranges is refused as
// unsupported without kiln copying them (found by guest/attack: kiln
// copied the whole chain, hundreds of MiB, before looking at it).
func TestBlockDiscardCopiesAtMostItsSegments(t *testing.T) {
	p := image(t, 16*SectorSize)
	b, err := NewBlock(p, false, "")
	require.NoError(t, err)
	defer b.Close()
	status := []byte{0xff}
	for _, typ := range []uint32{blkTDiscard, blkTWriteZeroes} {
		c := &Chain{
			Readable: append([][]byte{header(typ, 0)}, repeated(make([]byte, 1<<20), 64)...),
			Writable: [][]byte{status},
		}
		n := allocated(func() {
			_, err := b.handle(c)
			require.NoError(t, err)
		})
		require.EqualValues(t, blkSUnsupp, status[0], "request type %d", typ)
		require.Less(t, n, uint64(64<<10), "request type %d: kiln allocated %d bytes", typ, n)
	}
}

// activeVsock returns a vsock device whose driver set it up without
// queues: the test calls its transmit handler itself and takes its
// packets for the guest from its channel, so that thousands of packets
// cost no ring traffic.
func activeVsock(t *testing.T) (*Vsock, string) {
	path := filepath.Join(t.TempDir(), "v.sock")
	v, err := NewVsock(3, path)
	require.NoError(t, err)
	raw := make([]byte, 1<<16)
	tr := NewTransport(v, memory.FromBytes(raw), &fuzzIRQ{})
	applyOps(tr, raw, initSequence())
	t.Cleanup(func() {
		tr.Reset()
		v.Close()
	})
	return v, path
}

// guestPacket hands the device one packet from the guest.
func guestPacket(t *testing.T, v *Vsock, hdr []byte, payload ...[]byte) {
	t.Helper()
	_, err := v.transmit(&Chain{Readable: append([][]byte{hdr}, payload...)})
	require.NoError(t, err)
}

// reply takes the device's next packet for the guest: its op and ports.
func reply(t *testing.T, v *Vsock) (op uint16, local, peer uint32) {
	t.Helper()
	select {
	case p := <-v.rx:
		return binary.LittleEndian.Uint16(p[30:]), binary.LittleEndian.Uint32(p[16:]), binary.LittleEndian.Uint32(p[20:])
	case <-time.After(5 * time.Second):
		t.Fatal("the device sent the guest nothing")
	}
	return 0, 0, 0
}

// quietHost is a host program listening at path that accepts every
// connection and keeps it, sending nothing; with read, it reads all the
// guest sends. close closes it all and returns the bytes it read.
func quietHost(t *testing.T, path string, read bool) (close func() int64) {
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if read {
				wg.Add(1)
				go func() {
					defer wg.Done()
					k, _ := io.Copy(io.Discard, c)
					n.Add(k)
				}()
			}
		}
	}()
	return func() int64 {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		return n.Load()
	}
}

// raiseNofile raises the soft RLIMIT_NOFILE up to the hard limit when it
// is below need, until the test ends, and returns the soft limit the test
// has. (Go raises it at start since Go 1.19; a test that holds many files
// does not count on that.)
func raiseNofile(t *testing.T, need uint64) uint64 {
	t.Helper()
	var lim unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &lim))
	if lim.Cur >= need || lim.Cur >= lim.Max {
		return lim.Cur
	}
	raised := unix.Rlimit{Cur: lim.Max, Max: lim.Max}
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &raised))
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) })
	return raised.Cur
}

func TestRaiseNofile(t *testing.T) {
	var start unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &start))
	if start.Max < 2048 {
		t.Skipf("RLIMIT_NOFILE's hard limit is %d: nothing to raise to", start.Max)
	}
	low := unix.Rlimit{Cur: 1024, Max: start.Max}
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &low))
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &start)
	t.Run("raise", func(t *testing.T) {
		require.Equal(t, start.Max, raiseNofile(t, 2048))
		var now unix.Rlimit
		require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &now))
		require.Equal(t, start.Max, now.Cur)
	})
	var after unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &after))
	require.Equal(t, low, after, "restored when the test ended")
	require.EqualValues(t, 1024, raiseNofile(t, 1000), "enough: left as it is")
}

// withCredit sets a header's buf_alloc.
func withCredit(h []byte, bufAlloc uint32) []byte {
	binary.LittleEndian.PutUint32(h[36:], bufAlloc)
	return h
}

// TestVsockConnectionLimit: a guest asks for 10,000 connections to a
// host program that accepts them all. The first vsockMaxConns get a
// RESPONSE, every other one an RST; kiln holds at most vsockMaxConns
// sockets and a goroutine for each, no more.
func TestVsockConnectionLimit(t *testing.T) {
	const need = 3 * vsockMaxConns // 2*vsockMaxConns sockets, and room
	if got := raiseNofile(t, need); got < need {
		t.Skipf("RLIMIT_NOFILE's hard limit is %d: this test holds %d sockets and needs %d files open (raise the hard limit to run it: ulimit -Hn, as root)",
			got, 2*vsockMaxConns, need)
	}
	base := runtime.NumGoroutine()
	v, path := activeVsock(t)
	defer quietHost(t, path+"_5000", false)()

	const requests = 10000
	responses, resets := 0, 0
	for i := 0; i < requests; i++ {
		guestPacket(t, v, vsockHdr(uint32(10000+i), 5000, vsockOpRequest, 0, nil))
		op, local, peer := reply(t, v)
		require.EqualValues(t, 5000, local)
		require.EqualValues(t, 10000+i, peer)
		switch op {
		case vsockOpResponse:
			responses++
			require.LessOrEqual(t, i, vsockMaxConns-1, "request %d accepted past the limit", i)
		case vsockOpRST:
			resets++
			require.GreaterOrEqual(t, i, vsockMaxConns, "request %d refused under the limit", i)
		default:
			t.Fatalf("request %d: op %d", i, op)
		}
	}
	require.Equal(t, vsockMaxConns, responses)
	require.Equal(t, requests-vsockMaxConns, resets)
	v.mu.Lock()
	conns := len(v.conns)
	v.mu.Unlock()
	require.Equal(t, vsockMaxConns, conns)
	// One forward goroutine a connection, the host program's, and a few
	// of the device's own.
	require.LessOrEqual(t, runtime.NumGoroutine(), base+vsockMaxConns+16)

	// A connection that ends makes room for another.
	guestPacket(t, v, vsockHdr(10000, 5000, vsockOpRST, 0, nil))
	guestPacket(t, v, vsockHdr(99999, 5000, vsockOpRequest, 0, nil))
	op, _, _ := reply(t, v)
	require.EqualValues(t, vsockOpResponse, op)
}

// TestVsockDroppedConnectionLeavesNoGoroutine: a guest that connects
// offering no buffer space (buf_alloc 0), so that kiln's forward
// goroutine waits for credit, then resets the connection, 500 times.
// Each goroutine must end with its connection (found by reading vsock.go
// for guest/attack's "connections without credit": they waited until the
// device was reset, without bound).
func TestVsockDroppedConnectionLeavesNoGoroutine(t *testing.T) {
	v, path := activeVsock(t)
	defer quietHost(t, path+"_5000", false)()
	base := runtime.NumGoroutine()
	for i := 0; i < 500; i++ {
		port := uint32(20000 + i)
		guestPacket(t, v, withCredit(vsockHdr(port, 5000, vsockOpRequest, 0, nil), 0))
		op, _, _ := reply(t, v)
		require.EqualValues(t, vsockOpResponse, op)
		guestPacket(t, v, withCredit(vsockHdr(port, 5000, []uint16{vsockOpRST, vsockOpShutdown}[i%2], 3, nil), 0))
		if i%2 == 1 { // a full shutdown: kiln resets its side
			op, _, _ = reply(t, v)
			require.EqualValues(t, vsockOpRST, op)
		}
	}
	// The host program keeps its ends open; kiln must not.
	noGoroutinesAbove(t, base+8, "after 500 connections were reset")
}

// TestVsockDataPacketIsNotCopied: a data packet's chain may describe far
// more than its header's length, or a length far past what Linux ever
// sends. kiln writes exactly length bytes of the guest's buffers to the
// host socket without copying them; a length over vsockMaxPayload resets
// the connection (found by guest/attack: a packet over 32 times guest RAM
// made kiln copy all of it).
func TestVsockDataPacketIsNotCopied(t *testing.T) {
	v, path := activeVsock(t)
	hostClose := quietHost(t, path+"_5000", true)
	guestPacket(t, v, vsockHdr(1, 5000, vsockOpRequest, 0, nil))
	op, _, _ := reply(t, v)
	require.EqualValues(t, vsockOpResponse, op)

	ram := make([]byte, 1<<20)
	huge := repeated(ram, 64)
	h := vsockHdr(1, 5000, vsockOpRW, 0, nil)
	binary.LittleEndian.PutUint32(h[24:], vsockMaxPayload)
	n := allocated(func() { guestPacket(t, v, h, huge...) })
	require.Less(t, n, uint64(16<<10), "a 64 KiB data packet over 64 MiB of buffers: kiln allocated %d bytes", n)

	binary.LittleEndian.PutUint32(h[24:], 64<<20)
	n = allocated(func() { guestPacket(t, v, h, huge...) })
	require.Less(t, n, uint64(16<<10), "a 64 MiB data packet: kiln allocated %d bytes", n)
	op, _, _ = reply(t, v)
	require.EqualValues(t, vsockOpRST, op, "a data packet over the largest payload resets its connection")
	v.mu.Lock()
	require.Empty(t, v.conns)
	v.mu.Unlock()
	require.EqualValues(t, vsockMaxPayload, hostClose(), "the host program read the first packet's bytes, no more")
}

// countingReader reads zeros and counts them.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	clear(p)
	c.n += len(p)
	return len(p), nil
}

// TestRNGFillsAtMostItsBound: a request with room for 256 MiB of
// entropy gets rngMaxFill bytes; kiln reads no more from the host (found
// by guest/attack: a chain of 256 descriptors over the same megabyte made
// kiln read hundreds of MiB of getrandom(2) for one request).
func TestRNGFillsAtMostItsBound(t *testing.T) {
	src := &countingReader{}
	r := &RNG{src: src}
	n, err := r.fill(&Chain{Writable: repeated(make([]byte, 1<<20), 256)})
	require.NoError(t, err)
	require.EqualValues(t, rngMaxFill, n)
	require.Equal(t, rngMaxFill, src.n)
}

// TestChainOfMoreThanFourGiB: a chain may describe at most MaxChainBytes;
// one over it (4097 descriptors of 1 MiB, all the same megabyte, in an
// indirect table) is malformed.
func TestChainOfMoreThanFourGiB(t *testing.T) {
	for _, c := range []struct {
		entries int
		ok      bool
	}{{4096, true}, {4097, false}} {
		raw := make([]byte, 2<<20)
		mem := memory.FromBytes(raw)
		q := &Queue{Size: 4, DescAddr: 0x1000, DriverAddr: 0x2000, DeviceAddr: 0x3000}
		require.NoError(t, q.Activate(mem))
		const table = 0x100000
		for i := 0; i < c.entries; i++ {
			e := raw[table+16*i:]
			binary.LittleEndian.PutUint64(e, 0)         // the first megabyte
			binary.LittleEndian.PutUint32(e[8:], 1<<20) // all of it
			binary.LittleEndian.PutUint16(e[12:], descFWrite|descFNext)
			binary.LittleEndian.PutUint16(e[14:], uint16(i+1))
		}
		binary.LittleEndian.PutUint16(raw[table+16*(c.entries-1)+12:], descFWrite)
		d := raw[0x1000:]
		binary.LittleEndian.PutUint64(d, table)
		binary.LittleEndian.PutUint32(d[8:], uint32(16*c.entries))
		binary.LittleEndian.PutUint16(d[12:], descFIndirect)
		binary.LittleEndian.PutUint16(raw[0x2000+2:], 1) // avail idx: one chain, head 0
		chain, err := q.Pop()
		if c.ok {
			require.NoError(t, err)
			require.EqualValues(t, uint64(MaxChainBytes), chain.WritableLen())
		} else {
			require.ErrorIs(t, err, ErrBadChain)
		}
	}
}

// frameCounter is a network back end that counts frames.
type frameCounter struct {
	chanBackend
	frames int
}

func (f *frameCounter) WriteFrame(bufs [][]byte) error { f.frames++; return nil }

// TestNetDropsFramesOverItsBound: a transmit chain over netMaxFrame (here
// 64 MiB over the same megabyte) is dropped before the back end sees it.
func TestNetDropsFramesOverItsBound(t *testing.T) {
	be := &frameCounter{}
	n, err := NewNet(be, []byte{2, 0, 0, 0, 0, 1})
	require.NoError(t, err)
	_, err = n.transmit(&Chain{Readable: repeated(make([]byte, 1<<20), 64)})
	require.NoError(t, err)
	_, err = n.transmit(&Chain{Readable: [][]byte{make([]byte, netMaxFrame)}})
	require.NoError(t, err)
	require.Equal(t, 1, be.frames, "the frame of netMaxFrame bytes, not the 64 MiB one")
}

// TestP9InFlightBoundHoldsAcrossResets: requests that block on the host
// keep their slots when the driver resets the device; a guest that resets
// and queues again, over and over, still has at most p9MaxInFlight
// requests running (found by reading p9.go for guest/attack's resets:
// each activation had slots of its own, so every reset could start
// another p9MaxInFlight goroutines).
func TestP9InFlightBoundHoldsAcrossResets(t *testing.T) {
	srv := &fakeP9{block: make(chan struct{})}
	base := runtime.NumGoroutine()
	d := p9Driver(t, srv)
	for round := 0; round < 5; round++ {
		if round > 0 {
			d.w32(RegStatus, 0)
			d.next, d.idx, d.seen, d.heap = 0, 0, 0, 0x10000
			clear(d.raw[:d.heap])
			d.setup(p9QueueSize, 0)
		}
		for i := 0; i < p9MaxInFlight+8; i++ {
			d.submit(buf{data: p9msg(1, uint16(i), uint8(0xb1))}, buf{n: 16, write: true})
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Eventually(t, func() bool { return srv.inFlight.Load() == p9MaxInFlight }, testWait, pollEvery)
	time.Sleep(20 * time.Millisecond)
	require.EqualValues(t, p9MaxInFlight, srv.most.Load(), "requests at once over five activations")
	require.LessOrEqual(t, runtime.NumGoroutine(), base+p9MaxInFlight+8)
	close(srv.block)
	// The last activation's requests are served once the old ones end.
	for i := 0; i < p9MaxInFlight+8; i++ {
		d.wait()
	}
}

// TestP9CopiesAtMostOneRequest: a chain whose readable part describes
// 64 MiB costs one copy of at most p9MaxRequest bytes.
func TestP9CopiesAtMostOneRequest(t *testing.T) {
	ram := make([]byte, 1<<20)
	var req []byte
	n := allocated(func() { req = p9Request(repeated(ram, 64)) })
	require.Len(t, req, p9MaxRequest)
	require.Less(t, n, uint64(p9MaxRequest+64<<10))
}

// TestP9ServesAfterManyBrokenActivations: a driver that breaks the
// device (a chain with no room for a reply) and resets it, 100 times,
// then sends a good request: it is served. (Found by guest/attack: with
// the in-flight bound shared by all activations, each activation that
// ended kept one slot, and after 32 the device never served again.)
func TestP9ServesAfterManyBrokenActivations(t *testing.T) {
	d := p9Driver(t, &fakeP9{})
	restart := func() {
		d.w32(RegStatus, 0)
		d.next, d.idx, d.seen, d.heap = 0, 0, 0, 0x10000
		clear(d.raw[:d.heap])
		d.setup(p9QueueSize, 0)
	}
	for i := 0; i < 100; i++ {
		if i%2 == 0 {
			d.submit(buf{data: p9msg(1, 1, uint8(7))}, buf{n: 4, write: true}) // no room
			d.waitNeedsReset()
		}
		restart() // a reset of a broken device, or of an idle one
	}
	a := d.submit(buf{data: p9msg(1, 2, uint8(9))}, buf{n: 64, write: true})
	_, n := d.wait()
	require.EqualValues(t, 11, n)
	require.EqualValues(t, 9, d.raw[a[1]+7])
}

// TestQueueSizeOverTheDevicesMaximum: a driver that sets a queue larger
// than QueueNumMax (here 512 and 32768 for the entropy device's 256)
// gets DEVICE_NEEDS_RESET at DRIVER_OK, and the device starts no work.
func TestQueueSizeOverTheDevicesMaximum(t *testing.T) {
	for _, size := range []uint32{512, MaxQueueSize, 1 << 16} {
		d := newDriver(t, NewRNG())
		d.w32(RegStatus, StatusAcknowledge|StatusDriver)
		d.w32(RegDriverFeaturesSel, 1)
		d.w32(RegDriverFeatures, uint32(FeatureVersion1>>32))
		d.w32(RegStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK)
		d.w32(RegQueueSel, 0)
		d.w32(RegQueueNum, size)
		d.w32(RegQueueDescLow, uint32(d.desc))
		d.w32(RegQueueDriverLow, uint32(d.avail))
		d.w32(RegQueueDeviceLow, uint32(d.used))
		d.w32(RegQueueReady, 1)
		d.w32(RegStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK)
		require.NotZero(t, d.r32(RegStatus)&StatusDeviceNeedsReset, "queue size %d", size)
		require.False(t, d.tr.active, "queue size %d: the device started", size)
	}
}
