package main

import (
	"fmt"
)

// virtio-vsock packets (VIRTIO 1.2, 5.10.6): a 44-byte header, then the
// payload.
const (
	vsockHdrLen          = 44
	vsockOpRequest       = 1
	vsockOpResponse      = 2
	vsockOpRST           = 3
	vsockOpShutdown      = 4
	vsockOpRW            = 5
	vsockOpCreditUpdate  = 6
	vsockOpCreditRequest = 7
)

// vsockHdr builds a stream packet header from cid to dst.
func vsockHdr(src, dst uint64, srcPort, dstPort uint32, op uint16, flags, bufAlloc, fwdCnt, length uint32) []byte {
	h := make([]byte, vsockHdrLen)
	le.PutUint64(h[0:], src)
	le.PutUint64(h[8:], dst)
	le.PutUint32(h[16:], srcPort)
	le.PutUint32(h[20:], dstPort)
	le.PutUint32(h[24:], length)
	le.PutUint16(h[28:], 1) // VIRTIO_VSOCK_TYPE_STREAM
	le.PutUint16(h[30:], op)
	le.PutUint32(h[32:], flags)
	le.PutUint32(h[36:], bufAlloc)
	le.PutUint32(h[40:], fwdCnt)
	return h
}

// refillRx keeps about want receive buffers posted on queue 0, so that
// the device can answer a flood.
func (d *dev) refillRx(want int) {
	q := d.qs[0]
	for int(q.idx-q.usedIdx()) < min(want, int(q.size)) {
		_, p := d.buf(256)
		q.publish(q.chain(desc{addr: p, len: 256, flags: descWrite}))
	}
	d.notify(0)
}

// vsockAttack sends one of: packets of random nonsense; a flood of
// connection requests to the host's listening port, past any sane number
// of connections; data packets of many times guest RAM; connections that
// offer no credit and are reset at once; receive buffers too small for a
// header.
func (at *attacker) vsockAttack(d *dev) string {
	r := at.rnd
	d.setup(layout{})
	tx := d.qs[1]
	send := func(h []byte, payload ...desc) {
		es := append([]desc{{addr: d.data(h), len: uint32(len(h))}}, payload...)
		at.publishLong(d, tx, es)
	}
	port := func() uint32 { at.vsockPort++; return 100000 + at.vsockPort }
	switch kind := r.IntN(6); kind {
	case 0:
		d.refillRx(64)
		n := 1 + r.IntN(24)
		for i := 0; i < n; i++ {
			h := vsockHdr(r.Uint64()>>uint(r.IntN(64)), []uint64{2, 2, 2, at.cid, r.Uint64()}[r.IntN(5)],
				r.Uint32()>>uint(r.IntN(32)), []uint32{at.listenPort, r.Uint32()}[r.IntN(2)],
				uint16(r.IntN(10)), r.Uint32()>>uint(r.IntN(32)), r.Uint32(), r.Uint32(), 0)
			if r.IntN(4) == 0 {
				le.PutUint16(h[28:], uint16(r.IntN(4)))
			}
			payload := make([]byte, r.IntN(200))
			le.PutUint32(h[24:], uint32(len(payload)+r.IntN(3)-1))
			if len(payload) > 0 {
				send(h, desc{addr: d.data(payload), len: uint32(len(payload))})
			} else {
				send(h)
			}
		}
		d.notify(1)
		return fmt.Sprintf("%d nonsense packets: %v", n, d.wait(tx, uint16(n), hostileWait))
	case 1:
		n := 1 + r.IntN(at.vsockFlood)
		sent := 0
		for sent < n {
			d.refillRx(200)
			batch := min(n-sent, 100)
			for i := 0; i < batch; i++ {
				bufAlloc := uint32(64 << 10)
				if r.IntN(4) == 0 {
					bufAlloc = 0
				}
				send(vsockHdr(at.cid, 2, port(), at.listenPort, vsockOpRequest, 0, bufAlloc, 0, 0))
			}
			sent += batch
			d.notify(1)
			if d.wait(tx, uint16(sent), serveWait) != outUsed {
				break // the device stopped taking them: it is full, or broken
			}
		}
		return fmt.Sprintf("flood of %d connection requests to port %d: %d taken, status %#x", n, at.listenPort, tx.usedIdx(), d.status())
	case 2:
		d.refillRx(16)
		p := port()
		send(vsockHdr(at.cid, 2, p, at.listenPort, vsockOpRequest, 0, 64<<10, 0, 0))
		k := 1 + r.IntN(32)
		payload := at.hugeReadable(k)
		total := uint64(0)
		for _, e := range payload {
			total += uint64(e.len)
		}
		// All of it, any part of it, or as much as Linux would send.
		length := uint32(min(total, 1<<32-1))
		switch r.IntN(3) {
		case 0:
			length = uint32(r.Uint64N(uint64(length) + 1))
		case 1:
			length = uint32(r.IntN(64<<10 + 1))
		}
		send(vsockHdr(at.cid, 2, p, at.listenPort, vsockOpRW, 0, 64<<10, 0, length), payload...)
		d.notify(1)
		return fmt.Sprintf("%d-byte data packet over %d times guest RAM: %v", length, k, d.wait(tx, 2, serveWait))
	case 3:
		d.refillRx(128)
		n := 1 + r.IntN(50)
		for i := 0; i < n; i++ {
			p := port()
			send(vsockHdr(at.cid, 2, p, at.listenPort, vsockOpRequest, 0, 0, 0, 0))
			send(vsockHdr(at.cid, 2, p, at.listenPort, []uint16{vsockOpRST, vsockOpShutdown}[r.IntN(2)], 3, 0, 0, 0))
		}
		d.notify(1)
		return fmt.Sprintf("%d connections without credit, reset at once: %v", n, d.wait(tx, uint16(2*n), serveWait))
	case 4:
		rx := d.qs[0]
		_, p := d.buf(64)
		rx.publish(rx.chain(desc{addr: p, len: uint32(r.IntN(vsockHdrLen)), flags: descWrite}))
		d.notify(0)
		send(vsockHdr(at.cid, 2, port(), 1+r.Uint32N(1000), vsockOpRequest, 0, 64<<10, 0, 0))
		d.notify(1)
		return "a receive buffer too small for a header: " + d.wait(nil, 0, hostileWait).String()
	default:
		d.refillRx(64)
		p := port()
		send(vsockHdr(at.cid, 2, p, at.listenPort, vsockOpRequest, 0, 64<<10, 0, 0))
		n := 1 + r.IntN(16)
		_, bp := d.big()
		for i := 0; i < n; i++ {
			// 4 KiB to 128 KiB: mostly what Linux sends, now and then more.
			l := uint32(min(d.a.bigPages*pageSize, 4096<<r.IntN(6)))
			send(vsockHdr(at.cid, 2, p, at.listenPort, vsockOpRW, 0, 64<<10, 0, l), desc{addr: bp, len: l})
		}
		d.notify(1)
		return fmt.Sprintf("%d data packets past the credit: %v", n, d.wait(tx, uint16(n+1), hostileWait))
	}
}
