package main

import (
	"fmt"
	"time"
)

// Requests with hostile content for each device type: well-formed chains
// that carry nonsense, or ask for far too much.

// bigRAM returns the largest RAM span above 1 MiB: readable buffers may
// point anywhere in it (the device only reads them).
func (at *attacker) bigRAM() (uint64, uint32) {
	var best span
	for _, s := range at.ram {
		s.start = max(s.start, 1<<20)
		if s.end > s.start && s.end-s.start > best.end-best.start {
			best = s
		}
	}
	return best.start, uint32(min(best.end-best.start, 1<<32-1))
}

// hugeReadable returns n descriptors that each cover all of the largest
// RAM span: a request of n times the guest's memory, which a device that
// copies what it reads would have to hold at once.
func (at *attacker) hugeReadable(n int) []desc {
	a, l := at.bigRAM()
	es := make([]desc, n)
	for i := range es {
		es[i] = desc{addr: a, len: l}
	}
	return es
}

// bigWritable returns n descriptors over the arena's contiguous run: a
// request for as much as n times that from the device.
func (d *dev) bigWritable(n int) []desc {
	_, p := d.big()
	es := make([]desc, n)
	for i := range es {
		es[i] = desc{addr: p, len: uint32(d.a.bigPages * pageSize), flags: descWrite}
	}
	return es
}

// bigReadable returns n descriptors over the arena's contiguous run, all
// zeros: as many bytes as a huge readable request, of harmless content
// (a block device reads zero-length ranges from it).
func (d *dev) bigReadable(n int) []desc {
	v, p := d.big()
	clear(v)
	es := make([]desc, n)
	for i := range es {
		es[i] = desc{addr: p, len: uint32(len(v))}
	}
	return es
}

// publishLong publishes es as one chain: through an indirect table in
// small pages if it is longer than the queue (up to 256 entries), else
// directly.
func (at *attacker) publishLong(d *dev, q *vq, es []desc) {
	if len(es) <= int(q.size) && (len(es) < 2 || at.rnd.IntN(3) > 0) {
		q.publish(q.chain(es...))
		return
	}
	es = es[:min(len(es), 256)]
	tbl, tp := d.buf(pageSize)
	for i, e := range es {
		if i < len(es)-1 {
			e.flags |= descNext
			e.next = uint16(i + 1)
		}
		b := tbl[16*i:]
		le.PutUint64(b, e.addr)
		le.PutUint32(b[8:], e.len)
		le.PutUint16(b[12:], e.flags)
		le.PutUint16(b[14:], e.next)
	}
	q.publish(q.chain(desc{addr: tp, len: uint32(16 * len(es)), flags: descIndirect}))
}

// --- virtio-blk ----------------------------------------------------------

const (
	blkIn          = 0
	blkOut         = 1
	blkFlush       = 4
	blkGetID       = 8
	blkDiscard     = 11
	blkWriteZeroes = 13
)

// blkAttack sends a batch of block requests: reads, writes, discards and
// write-zeroes at sectors inside the range the attacker may write, past
// the end of the disk or straddling it, of sizes up to many times guest
// RAM; unknown types; missing headers and status bytes.
func (at *attacker) blkAttack(d *dev) string {
	r := at.rnd
	d.setup(layout{})
	q := d.qs[0]
	capacity := uint64(d.config32(0)) | uint64(d.config32(4))<<32
	n := 1 + r.IntN(12)
	for i := 0; i < n; i++ {
		typ := []uint32{blkIn, blkOut, blkFlush, blkGetID, blkDiscard, blkWriteZeroes, r.Uint32()}[r.IntN(7)]
		// The sector: in the writable range, or where nothing may happen.
		inRange := at.blkSectors > 0 && r.IntN(2) == 0
		var sector uint64
		switch {
		case inRange:
			sector = uint64(r.IntN(int(at.blkSectors)))
		case r.IntN(3) == 0:
			sector = capacity - uint64(r.IntN(3)) // straddles the end
		case r.IntN(2) == 0:
			sector = capacity + uint64(r.IntN(1<<20))
		default:
			sector = ^uint64(0) >> uint(r.IntN(10))
		}
		room := uint64(0) // bytes from sector to the end of the writable range
		if inRange {
			room = (at.blkSectors - sector) * 512
		}
		hdr := make([]byte, 16)
		le.PutUint32(hdr, typ)
		le.PutUint64(hdr[8:], sector)
		var es []desc
		switch r.IntN(8) {
		case 0: // the header cut over two buffers
			es = append(es, desc{addr: d.data(hdr[:5]), len: 5}, desc{addr: d.data(hdr[5:]), len: 11})
		case 1: // no header at all
		default:
			es = append(es, desc{addr: d.data(hdr), len: 16})
		}
		switch typ {
		case blkOut:
			if inRange {
				// Data that fits the writable range: arena bytes.
				k := 1 + r.IntN(4)
				for j := 0; j < k && room >= 512; j++ {
					n := uint64(512 * (1 + r.IntN(8)))
					n = min(n, room)
					room -= n
					es = append(es, desc{addr: d.data(make([]byte, min(n, pageSize))), len: uint32(min(n, pageSize))})
				}
			} else {
				es = append(es, at.hugeReadable(1+r.IntN(4))...)
			}
		case blkIn:
			if r.IntN(2) == 0 {
				es = append(es, d.bigWritable(1+r.IntN(64))...)
			} else {
				_, p := d.buf(pageSize)
				es = append(es, desc{addr: p, len: uint32(512 * r.IntN(9)), flags: descWrite})
			}
		case blkDiscard, blkWriteZeroes:
			switch {
			case r.IntN(3) == 0: // segments by the hundred megabytes
				es = append(es, d.bigReadable(1+r.IntN(256))...)
			default:
				segs := 1 + r.IntN(4)
				b := make([]byte, 16*segs)
				for s := 0; s < segs; s++ {
					ss, cnt := capacity+uint64(r.IntN(100)), uint32(1+r.IntN(1000))
					if inRange && room >= 512 {
						ss, cnt = sector, uint32(min(room/512, uint64(1+r.IntN(64))))
					}
					le.PutUint64(b[16*s:], ss)
					le.PutUint32(b[16*s+8:], cnt)
					le.PutUint32(b[16*s+12:], uint32(r.IntN(2)))
				}
				es = append(es, desc{addr: d.data(b), len: uint32(len(b))})
			}
		case blkGetID:
			_, p := d.buf(64)
			es = append(es, desc{addr: p, len: uint32(r.IntN(41)), flags: descWrite})
		}
		if r.IntN(10) > 0 { // the status byte, usually
			_, p := d.buf(1)
			es = append(es, desc{addr: p, len: 1, flags: descWrite})
		}
		if len(es) == 0 {
			_, p := d.buf(1)
			es = append(es, desc{addr: p, len: 0})
		}
		at.publishLong(d, q, es)
	}
	d.notify(0)
	return fmt.Sprintf("%d block requests (capacity %d sectors): %v", n, capacity, d.wait(q, uint16(n), hostileWait))
}

// --- virtio-rng ----------------------------------------------------------

// rngAttack asks for entropy by the gigabyte, in no bytes, or in buffers
// the device can only read.
func (at *attacker) rngAttack(d *dev) string {
	r := at.rnd
	d.setup(layout{})
	q := d.qs[0]
	n := 1 + r.IntN(4)
	for i := 0; i < n; i++ {
		switch r.IntN(4) {
		case 0:
			at.publishLong(d, q, d.bigWritable(1+r.IntN(256)))
		case 1:
			_, p := d.buf(8)
			q.publish(q.chain(desc{addr: p, len: 0, flags: descWrite}))
		case 2:
			q.publish(q.chain(at.hugeReadable(1 + r.IntN(4))...))
		default:
			_, p := d.buf(pageSize)
			q.publish(q.chain(desc{addr: p, len: uint32(1 + r.IntN(pageSize)), flags: descWrite}))
		}
	}
	start := time.Now()
	d.notify(0)
	o := d.wait(q, uint16(n), serveWait)
	return fmt.Sprintf("%d entropy requests: %v after %v", n, o, time.Since(start).Round(time.Millisecond))
}

// --- virtio-net ----------------------------------------------------------

// netAttack transmits frames without headers, of no bytes or of many
// times guest RAM, and gives receive buffers too small for a header.
func (at *attacker) netAttack(d *dev) string {
	r := at.rnd
	d.setup(layout{})
	if r.IntN(3) == 0 {
		rx := d.qs[0]
		_, p := d.buf(16)
		rx.publish(rx.chain(desc{addr: p, len: uint32(r.IntN(12)), flags: descWrite}))
		d.notify(0)
	}
	q := reqQueue(d)
	n := 1 + r.IntN(8)
	for i := 0; i < n; i++ {
		switch r.IntN(3) {
		case 0:
			at.publishLong(d, q, at.hugeReadable(1+r.IntN(64)))
		case 1:
			q.publish(q.chain(desc{addr: d.data(make([]byte, 12)), len: uint32(r.IntN(13))}))
		default:
			f := make([]byte, 12+r.IntN(1600))
			for j := range f {
				f[j] = byte(r.Uint32())
			}
			q.publish(q.chain(desc{addr: d.data(f), len: uint32(len(f))}))
		}
	}
	d.notify(q.n)
	return fmt.Sprintf("%d frames: %v", n, d.wait(q, uint16(n), hostileWait))
}
