package virtio

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzVsockPacket sends the vsock device arbitrary packets on its transmit
// queue, as a guest would. The input is a list of packets:
//
//	byte 0      ctl: bits 0-1 how the header is cut into buffers (3: cut
//	            short, and nothing follows), bits 2-4 how many times the
//	            payload buffer repeats (1-8), bit 5 a trailing
//	            device-writable buffer
//	bytes 1-2   payload length (the bytes follow, then zeros)
//	bytes 3-46  the 44-byte header, as is
//
// A host program listens on port fuzzVsockPort and, if hostReads, reads
// whatever the guest sends. The receive queue is left to the test, which
// takes the device's packets straight from its channel.
//
// Nothing may panic or hang; nonsense (a packet for another CID or socket
// type, data for no connection, a request to a port nobody listens on)
// is answered with RST; connections and goroutines grow only with
// accepted requests; the final reset returns and leaves no goroutines.
func FuzzVsockPacket(f *testing.F) {
	for _, s := range vsockSeeds() {
		f.Add(true, s.packets)
	}
	dir := f.TempDir()
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, hostReads bool, packets []byte) {
		runVsockPackets(t, filepath.Join(dir, fmt.Sprintf("v%d.sock", n.Add(1))), hostReads, packets)
	})
}

// vsockRun is what runVsockPackets saw.
type vsockRun struct {
	accepted   int   // requests the device accepted
	hostBytes  int64 // bytes the host program read
	needsReset bool  // the device stopped at a malformed packet
}

// runVsockPackets is FuzzVsockPacket's body: a device at path, its host
// program, and the packets.
func runVsockPackets(t *testing.T, path string, hostReads bool, packets []byte) vsockRun {
	const maxPackets = 32
	var run vsockRun
	base := runtime.NumGoroutine()
	host := newFuzzHost(t, path+fmt.Sprint("_", fuzzVsockPort), hostReads)
	v, err := NewVsock(3, path)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, fuzzVsockMem)
	tr := NewTransport(v, newBoundedMem(t, raw), &fuzzIRQ{})
	applyOps(tr, raw, initSequence(1)) // the transmit queue only
	m := newSeedMem(raw)

	for i := 0; i < maxPackets && len(packets) > 0; i++ {
		var p vsockPacket
		p, packets = nextVsockPacket(packets)
		key := connKey{local: p.dstPort(), peer: p.srcPort()}
		v.mu.Lock()
		_, exists := v.conns[key]
		v.mu.Unlock()

		m.heap = seedBuffers // the previous packet is done with its buffers
		p.publish(m)
		tr.Kick(1)
		switch waitTx(tr, raw, m.idx[1]) {
		case txBlocked:
			// Back pressure (a host that does not read): legal, but the
			// reset below must still return.
			i = maxPackets
			continue
		case txNeedsReset:
			if !p.malformed() {
				t.Fatalf("packet %d: well-formed, but the device asks for a reset", i)
			}
			run.needsReset = true
			i = maxPackets
			continue
		}
		if p.malformed() {
			t.Fatalf("packet %d: malformed (%d readable bytes, length %d), but taken", i, p.readable(), p.length())
		}
		replies := drainVsock(v)
		switch {
		case !p.forHost():
			requireReply(t, i, replies, key, vsockOpRST, "a packet for another CID or socket type")
		case exists:
		case p.op() == vsockOpRequest && p.dstPort() == fuzzVsockPort:
			requireReply(t, i, replies, key, vsockOpResponse, "a request to a listening port")
			run.accepted++
		case p.op() == vsockOpRequest:
			requireReply(t, i, replies, key, vsockOpRST, "a request to a port nobody listens on")
		case p.op() != vsockOpRST:
			requireReply(t, i, replies, key, vsockOpRST, "a packet for no connection")
		}
		// Bounded: a connection only for an accepted request, and a few
		// goroutines for each.
		v.mu.Lock()
		conns := len(v.conns)
		v.mu.Unlock()
		if conns > run.accepted {
			t.Fatalf("packet %d: %d connections from %d accepted requests", i, conns, run.accepted)
		}
		if g := runtime.NumGoroutine(); g > base+8+3*run.accepted {
			t.Fatalf("packet %d: %d goroutines for %d accepted requests (%d before)", i, g, run.accepted, base)
		}
	}
	within(t, 5*time.Second, "the reset (status 0)", func() {
		tr.Write(RegStatus, []byte{0, 0, 0, 0})
	})
	v.Close()
	run.hostBytes = host.close(run.accepted)
	noGoroutinesAbove(t, base, "after reset")
	return run
}

const (
	fuzzVsockPort = 5000
	fuzzVsockMem  = 1 << 20
	maxVsockSeed  = 64 << 10
)

// vsockPacket is one decoded packet of FuzzVsockPacket's input.
type vsockPacket struct {
	ctl     byte
	hdr     []byte
	payload []byte
}

func nextVsockPacket(in []byte) (vsockPacket, []byte) {
	take := func(n int) []byte {
		b := make([]byte, n)
		in = in[copy(b, in):]
		return b
	}
	var p vsockPacket
	p.ctl = take(1)[0]
	plen := int(binary.LittleEndian.Uint16(take(2)))
	p.hdr = take(vsockHdrLen)
	p.payload = make([]byte, plen)
	in = in[copy(p.payload, in):]
	return p, in
}

func (p vsockPacket) srcPort() uint32 { return binary.LittleEndian.Uint32(p.hdr[16:]) }
func (p vsockPacket) dstPort() uint32 { return binary.LittleEndian.Uint32(p.hdr[20:]) }
func (p vsockPacket) length() uint32  { return binary.LittleEndian.Uint32(p.hdr[24:]) }
func (p vsockPacket) op() uint16      { return binary.LittleEndian.Uint16(p.hdr[30:]) }
func (p vsockPacket) repeat() int     { return 1 + int(p.ctl>>2&7) }

func (p vsockPacket) forHost() bool {
	return binary.LittleEndian.Uint64(p.hdr[8:]) == vsockHostCID && binary.LittleEndian.Uint16(p.hdr[28:]) == vsockTypeStrm
}

// truncated: the chain holds only part of a header.
func (p vsockPacket) truncated() bool { return p.ctl&3 == 3 }

// readable is how many bytes the chain carries to the device.
func (p vsockPacket) readable() int {
	if p.truncated() {
		return vsockHdrLen - 4
	}
	return vsockHdrLen + p.repeat()*len(p.payload)
}

// malformed: the device must refuse the chain (and ask for a reset).
func (p vsockPacket) malformed() bool {
	return p.truncated() || p.forHost() && int(p.length()) > p.readable()-vsockHdrLen
}

// publish lays the packet out in guest memory as a chain on queue 1.
func (p vsockPacket) publish(m *seedMem) {
	var ds []descr
	hdr := m.put(p.hdr, vsockHdrLen)
	switch p.ctl & 3 {
	case 0: // the header alone
		ds = append(ds, descr{hdr, vsockHdrLen, false})
	case 1: // the header cut in two
		ds = append(ds, descr{hdr, 20, false}, descr{hdr + 20, vsockHdrLen - 20, false})
	case 2: // the header and the payload in one buffer
		m.heap = hdr
		a := m.put(append(append([]byte(nil), p.hdr...), p.payload...), 0)
		ds = append(ds, descr{a, uint32(vsockHdrLen + len(p.payload)), false})
	case 3: // part of a header, and nothing more
		m.publish(1, descr{hdr, uint32(p.readable()), false})
		return
	}
	if len(p.payload) > 0 {
		a := m.put(p.payload, 0)
		start := 0
		if p.ctl&3 == 2 {
			start = 1 // the first copy is in the header's buffer
		}
		for i := start; i < p.repeat(); i++ {
			ds = append(ds, descr{a, uint32(len(p.payload)), false})
		}
	}
	if p.ctl&0x20 != 0 {
		ds = append(ds, descr{m.put(nil, 64), 64, true})
	}
	m.publish(1, ds...)
}

type txResult int

const (
	txDone txResult = iota
	txBlocked
	txNeedsReset
)

// waitTx waits until the transmit queue's used index reaches idx. A
// transmit that takes longer than stallAfter counts as blocked.
func waitTx(tr *Transport, raw []byte, idx uint16) txResult {
	deadline := time.Now().Add(stallAfter())
	for load16(raw[seedUsed(1)+2:]) != idx {
		if tr.Status()&StatusDeviceNeedsReset != 0 {
			return txNeedsReset
		}
		if time.Now().After(deadline) {
			return txBlocked
		}
		runtime.Gosched()
	}
	return txDone
}

// stallAfter is short while fuzzing, where inputs that block are common
// and each costs this long; when go test runs the seeds, it is long enough
// that a loaded machine does not turn a slow transmit into a stall, and
// the seeds check the same paths every time.
func stallAfter() time.Duration {
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		return 50 * time.Millisecond
	}
	return time.Second
}

// drainVsock takes every packet the device has queued for the guest.
func drainVsock(v *Vsock) [][]byte {
	var ps [][]byte
	for {
		select {
		case p := <-v.rx:
			ps = append(ps, p)
		default:
			return ps
		}
	}
}

// requireReply fails unless replies hold a packet of op for key.
func requireReply(t *testing.T, i int, replies [][]byte, key connKey, op uint16, what string) {
	t.Helper()
	for _, p := range replies {
		if binary.LittleEndian.Uint32(p[16:]) == key.local && binary.LittleEndian.Uint32(p[20:]) == key.peer &&
			binary.LittleEndian.Uint16(p[30:]) == op {
			return
		}
	}
	t.Fatalf("packet %d, %s: no reply with op %d for %d->%d among %d", i, what, op, key.peer, key.local, len(replies))
}

// fuzzHost is the host program behind a vsock port: it accepts, greets,
// and reads (or not) what the guest sends.
type fuzzHost struct {
	t       *testing.T
	ln      net.Listener
	mu      sync.Mutex
	conns   []net.Conn
	accept  sync.WaitGroup
	readers sync.WaitGroup
	read    atomic.Int64
}

func newFuzzHost(t *testing.T, path string, reads bool) *fuzzHost {
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	h := &fuzzHost{t: t, ln: ln}
	h.accept.Add(1)
	go func() {
		defer h.accept.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			c.Write([]byte("hello from the host\n"))
			if reads {
				h.readers.Add(1)
				go func() {
					defer h.readers.Done()
					n, _ := io.Copy(io.Discard, c)
					h.read.Add(n)
				}()
			}
		}
	}()
	return h
}

// close ends the host program once it has accepted the device's conns
// connections (one a device connected, as a program's, may still wait in
// the listener's backlog) and the device closed its side of every one,
// and returns how many bytes it read.
func (h *fuzzHost) close(conns int) int64 {
	within(h.t, 5*time.Second, "the host's accepts", func() {
		for {
			h.mu.Lock()
			n := len(h.conns)
			h.mu.Unlock()
			if n >= conns {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	h.ln.Close()
	h.accept.Wait()
	within(h.t, 5*time.Second, "the host's reads (is a connection left open?)", h.readers.Wait)
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	return h.read.Load()
}

type vsockSeed struct {
	packets []byte
	want    vsockRun
}

// vsockSeeds: a connection's life (REQUEST, RW both ways, CREDIT_REQUEST,
// SHUTDOWN), refusals, and malformed packets.
func vsockSeeds() []vsockSeed {
	pkt := func(ctl byte, src, dst uint32, op uint16, flags uint32, payload []byte) []byte {
		h := vsockHdr(src, dst, op, flags, payload)
		b := append([]byte{ctl}, binary.LittleEndian.AppendUint16(nil, uint16(len(payload)))...)
		return append(append(b, h[:vsockHdrLen]...), payload...)
	}
	seq := func(ps ...[]byte) []byte {
		var b []byte
		for _, p := range ps {
			b = append(b, p...)
		}
		return b
	}
	other := pkt(0, 1, 2, vsockOpRequest, 0, nil)
	binary.LittleEndian.PutUint64(other[3+8:], 7) // another CID
	short := pkt(0, 1, fuzzVsockPort, vsockOpRW, 0, []byte("abc"))
	binary.LittleEndian.PutUint32(short[3+24:], 100) // more than it carries
	// The length field of the four-times packet says one copy: the
	// device forwards 11 bytes of its 44.
	four := pkt(2|3<<2, 1000, fuzzVsockPort, vsockOpRW, 0, []byte("four times\n"))
	return []vsockSeed{{
		seq(
			pkt(0, 1000, fuzzVsockPort, vsockOpRequest, 0, nil),
			pkt(1, 1000, fuzzVsockPort, vsockOpRW, 0, []byte("hello host\n")),
			four,
			pkt(0x20, 1000, fuzzVsockPort, vsockOpCreditRequest, 0, nil),
			pkt(0, 1000, fuzzVsockPort, vsockOpCreditUpdate, 0, nil),
			pkt(0, 1000, fuzzVsockPort, vsockOpShutdown, vsockShutdownSend, nil),
			pkt(0, 1000, fuzzVsockPort, vsockOpShutdown, vsockShutdownRecv|vsockShutdownSend, nil),
		),
		vsockRun{accepted: 1, hostBytes: 22},
	}, {
		seq(
			pkt(0, 1001, fuzzVsockPort, vsockOpRequest, 0, nil),
			pkt(0, 1001, fuzzVsockPort, vsockOpRST, 0, nil),
			pkt(0, 1001, fuzzVsockPort, vsockOpRW, 0, []byte("after the reset")),
		),
		vsockRun{accepted: 1},
	}, {
		seq(
			pkt(0, 1, 7000, vsockOpRequest, 0, nil),
			pkt(0, 1, 7000, vsockOpRW, 0, []byte("x")),
			pkt(0, 1, 7000, vsockOpResponse, 0, nil),
			other,
			short,
		),
		vsockRun{needsReset: true},
	}, {
		seq(pkt(3, 1, fuzzVsockPort, vsockOpRequest, 0, nil)), // a cut header
		vsockRun{needsReset: true},
	}}
}

// TestVsockPacketSeeds: FuzzVsockPacket's seeds reach the paths they are
// for.
func TestVsockPacketSeeds(t *testing.T) {
	for i, s := range vsockSeeds() {
		got := runVsockPackets(t, filepath.Join(t.TempDir(), "v.sock"), true, s.packets)
		if got != s.want {
			t.Errorf("seed %d: %+v, want %+v", i, got, s.want)
		}
	}
}
