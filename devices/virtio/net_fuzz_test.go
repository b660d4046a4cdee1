package virtio

import (
	"bytes"
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FuzzNetHeader sends arbitrary transmit chains through virtio-net to a
// tap, here one end of a socketpair. The input is a list of chains:
//
//	byte 0            n: the chain has n%8+1 buffers
//	2 bytes a buffer  bit 15: device-writable, bits 0-13: size
//	then              the bytes of the readable buffers, in order
//	                  (zeros where the input ends)
//
// The device does not read the virtio_net_hdr; the tap does. So the
// frame, header included, must reach the tap exactly as the chain holds
// it, in one write, unless it is longer than netMaxFrame: then it is
// dropped. A chain with less than a header, or a readable buffer
// after a writable one, makes the device ask for a reset. Nothing may
// panic or hang, and the reset must leave no goroutines.
func FuzzNetHeader(f *testing.F) {
	for _, s := range netSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, chains []byte) {
		runNetChains(t, chains)
	})
}

// runNetChains is FuzzNetHeader's body. It returns how many frames the
// tap received and whether the device asked for a reset.
func runNetChains(t *testing.T, chains []byte) (frames int, needsReset bool) {
	const maxChains = 32
	base := runtime.NumGoroutine()
	tp, host := fakeTap(t)
	n, err := NewNet(tp, net.HardwareAddr{2, 0, 0, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, fuzzNetMem)
	tr := NewTransport(n, newBoundedMem(t, raw), &fuzzIRQ{})
	applyOps(tr, raw, initSequence(netTxQueue)) // transmit only
	m := newSeedMem(raw)
	got := make([]byte, 1<<18)
	// Both ends of the pair have the default buffer size; a message must
	// fit in the sender's.
	sndbuf, err := unix.GetsockoptInt(host, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil {
		t.Fatal(err)
	}

	for i := 0; i < maxChains && len(chains) > 0; i++ {
		var c netChain
		c, chains = nextNetChain(chains)
		m.heap = seedBuffers // the previous chain is done with its buffers
		var ds []descr
		for _, b := range c.bufs {
			ds = append(ds, descr{m.put(b.data, b.n), uint32(max(b.n, len(b.data))), b.write})
		}
		m.publish(netTxQueue, ds...)
		tr.Kick(netTxQueue)
		if waitUsed(t, tr, raw, netTxQueue, m.idx[netTxQueue]) {
			if !c.malformed() {
				t.Fatalf("chain %d: well-formed, but the device asks for a reset", i)
			}
			needsReset = true
			break
		}
		if c.malformed() {
			t.Fatalf("chain %d: malformed, but taken", i)
		}
		if e := raw[seedUsed(netTxQueue)+4+8*uint64((m.idx[netTxQueue]-1)%seedQueueSize):]; binary.LittleEndian.Uint32(e[4:]) != 0 {
			t.Fatalf("chain %d: the device says it wrote %d bytes of a transmit chain", i, binary.LittleEndian.Uint32(e[4:]))
		}
		k, _, err := unix.Recvfrom(host, got, unix.MSG_DONTWAIT)
		if len(c.frame()) > netMaxFrame {
			// Over the device's bound: dropped, never written.
			if err == nil {
				t.Fatalf("chain %d: a %d-byte frame, over netMaxFrame, reached the tap", i, len(c.frame()))
			}
			continue
		}
		if err != nil && len(c.frame()) > sndbuf/2 {
			continue // too big for the socketpair: dropped, as a NIC drops
		}
		if err != nil {
			t.Fatalf("chain %d: no frame on the tap: %v", i, err)
		}
		if want := c.frame(); !bytes.Equal(got[:k], want) {
			t.Fatalf("chain %d: the tap got %d bytes, want the chain's %d", i, k, len(want))
		}
		frames++
	}
	within(t, 5*time.Second, "the reset (status 0)", func() {
		tr.Write(RegStatus, []byte{0, 0, 0, 0})
	})
	n.Close()
	noGoroutinesAbove(t, base, "after reset")
	return frames, needsReset
}

const fuzzNetMem = 256 << 10

// netChain is one decoded chain of FuzzNetHeader's input.
type netChain struct{ bufs []buf }

func nextNetChain(in []byte) (netChain, []byte) {
	var c netChain
	if len(in) == 0 {
		return c, in
	}
	count := int(in[0]%8) + 1
	in = in[1:]
	sizes := make([]uint16, count)
	for i := range sizes {
		if len(in) >= 2 {
			sizes[i] = binary.LittleEndian.Uint16(in)
			in = in[2:]
		} else {
			in = nil
		}
	}
	for _, v := range sizes {
		n := int(v & 0x3fff)
		if v&0x8000 != 0 {
			c.bufs = append(c.bufs, buf{n: n, write: true})
			continue
		}
		b := make([]byte, n)
		in = in[copy(b, in):]
		c.bufs = append(c.bufs, buf{data: b})
	}
	return c, in
}

// frame is what the tap must receive: every readable byte.
func (c netChain) frame() []byte {
	var f []byte
	for _, b := range c.bufs {
		if !b.write {
			f = append(f, b.data...)
		}
	}
	return f
}

func (c netChain) malformed() bool {
	seenWritable := false
	for _, b := range c.bufs {
		if b.write {
			seenWritable = true
		} else if seenWritable {
			return true
		}
	}
	return len(c.frame()) < NetHeaderLen
}

// waitUsed waits until queue q's used index reaches idx; it reports true
// if the device asked for a reset instead.
func waitUsed(t *testing.T, tr *Transport, raw []byte, q int, idx uint16) (needsReset bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for load16(raw[seedUsed(q)+2:]) != idx {
		if tr.Status()&StatusDeviceNeedsReset != 0 {
			return true
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %d: the device neither returned the chain nor asked for a reset", q)
		}
		runtime.Gosched()
	}
	return false
}

// netSeeds: frames with the header alone, split, and in the frame's
// buffer; GSO and checksum headers; a writable buffer at the end; and
// malformed chains.
func netSeeds() [][]byte {
	chain := func(bufs ...buf) []byte {
		b := []byte{byte(len(bufs) - 1)}
		var data []byte
		for _, x := range bufs {
			v := uint16(len(x.data))
			if x.write {
				v = uint16(x.n) | 0x8000
			}
			b = binary.LittleEndian.AppendUint16(b, v)
			data = append(data, x.data...)
		}
		return append(b, data...)
	}
	hdr := func(flags, gso byte, hdrLen, gsoSize, csumStart, csumOff uint16) []byte {
		h := []byte{flags, gso}
		for _, v := range []uint16{hdrLen, gsoSize, csumStart, csumOff, 0} {
			h = binary.LittleEndian.AppendUint16(h, v)
		}
		return h
	}
	eth := append(bytes.Repeat([]byte{0xff}, 6), 2, 0, 0, 0, 0, 1, 0x08, 0x00)
	frame := append(eth, bytes.Repeat([]byte("ip packet "), 10)...)
	plain := hdr(0, 0, 0, 0, 0, 0)
	csum := hdr(1, 0, 0, 0, 34, 16)    // NEEDS_CSUM, TCP over IPv4
	tso := hdr(1, 1, 54, 1448, 34, 16) // GSO_TCPV4
	both := append(append([]byte(nil), plain...), frame...)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	return [][]byte{
		cat(
			chain(buf{data: plain}, buf{data: frame}),
			chain(buf{data: both}),
			chain(buf{data: csum[:5]}, buf{data: csum[5:]}, buf{data: frame}),
			chain(buf{data: tso}, buf{data: frame[:20]}, buf{data: frame[20:]}, buf{n: 64, write: true}),
		),
		cat(
			chain(buf{data: plain}),
			chain(buf{data: plain[:11]}), // shorter than a header
		),
		cat(
			chain(buf{data: plain}, buf{n: 8, write: true}, buf{data: frame}), // readable after writable
		),
	}
}

// TestNetHeaderSeeds: FuzzNetHeader's seeds reach the paths they are for.
func TestNetHeaderSeeds(t *testing.T) {
	for i, want := range []struct {
		frames     int
		needsReset bool
	}{{4, false}, {1, true}, {0, true}} {
		frames, needsReset := runNetChains(t, netSeeds()[i])
		if frames != want.frames || needsReset != want.needsReset {
			t.Errorf("seed %d: %d frames, needs reset %v; want %d, %v", i, frames, needsReset, want.frames, want.needsReset)
		}
	}
}
