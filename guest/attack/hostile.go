package main

import (
	"fmt"
	"time"
)

// Attacks on any virtio device: malformed queues and chains, register
// games, and the checks that come with them. Each returns a word or two
// on what happened, for the log.

// Waits. kiln's device goroutines answer in microseconds; a software KVM
// slows the guest, not them, so these hold on a slow host too.
const (
	hostileWait = 30 * time.Millisecond // for a reaction to hostile input
	serveWait   = 3 * time.Second       // for an answer to a good request
)

// reqQueue is the queue a device takes requests on: the transmit queue of
// vsock and net, the only queue of the others.
func reqQueue(d *dev) *vq {
	switch d.w.id {
	case idVsock, idNet:
		if len(d.qs) > 1 {
			return d.qs[1]
		}
	}
	return d.qs[0]
}

// outside returns a guest-physical address that is not RAM (or wraps),
// and a length to go with it.
func (at *attacker) outside() (uint64, uint32) {
	r := at.rnd
	switch r.IntN(6) {
	case 0:
		return at.ramEnd + uint64(r.IntN(1<<20)), uint32(1 + r.IntN(8192))
	case 1:
		return 0xd0000000 + uint64(r.IntN(1<<16)), uint32(1 + r.IntN(4096))
	case 2:
		return 1<<40 + uint64(r.Uint32()), uint32(r.Uint32())
	case 3:
		return ^uint64(0) - uint64(r.IntN(8192)), uint32(1 + r.IntN(1<<16))
	case 4:
		return 0, 0xffffffff // from 0 past the end of any small RAM
	}
	return at.ramEnd - uint64(1+r.IntN(4096)), uint32(4097 + r.IntN(1<<16)) // straddles the end
}

// badChain writes a malformed chain of one of many kinds into q and
// publishes it; it returns the kind.
func (at *attacker) badChain(d *dev, q *vq) string {
	r := at.rnd
	okAddr := func() (uint64, uint32) {
		_, p := d.buf(64)
		return p, 64
	}
	switch kind := r.IntN(12); kind {
	case 0: // a loop: a -> b -> a
		a, n := okAddr()
		i := q.next % q.size
		j := (i + 1) % q.size
		q.put(i, desc{a, n, descNext, j})
		q.put(j, desc{a, n, descNext, i})
		q.next += 2
		q.publish(i)
		return "loop"
	case 1: // a chain through every descriptor, and one more
		a, n := okAddr()
		for i := uint16(0); i < q.size; i++ {
			q.put(i, desc{a, n, descNext, (i + 1) % q.size})
		}
		q.publish(0)
		return "longer than the queue"
	case 2:
		a, n := at.outside()
		q.publish(q.chain(desc{addr: a, len: n, flags: uint16(r.IntN(2)) * descWrite}))
		return fmt.Sprintf("buffer outside RAM %#x+%#x", a, n)
	case 3: // straddling the end of RAM
		k := uint64(1 + r.IntN(4096))
		a := at.ramEnd - k
		n := uint32(k) + uint32(1+r.IntN(8192))
		q.publish(q.chain(desc{addr: a, len: n, flags: descWrite}))
		return fmt.Sprintf("buffer straddling the end of RAM %#x+%#x", a, n)
	case 4:
		q.publish(q.size + uint16(r.IntN(1000)))
		return "head outside the table"
	case 5:
		a, n := okAddr()
		i := q.next % q.size
		q.next++
		q.put(i, desc{a, n, descNext, q.size + uint16(r.IntN(100))})
		q.publish(i)
		return "next outside the table"
	case 6:
		q.idx += q.size + 1 + uint16(r.IntN(100))
		le.PutUint16(q.avail[2:], q.idx)
		return "available index jumps"
	case 7:
		a, n := okAddr()
		q.publish(q.chain(desc{addr: a, len: n, flags: descWrite}, desc{addr: a, len: n}))
		return "readable after writable"
	case 8, 9:
		return at.badIndirect(d, q)
	case 10: // a huge buffer from address 0
		q.publish(q.chain(desc{addr: 0, len: 0xffffffff, flags: descWrite}))
		return "4 GiB buffer"
	default: // a descriptor table entry with every flag
		a, n := okAddr()
		i := q.next % q.size
		q.next++
		q.put(i, desc{a, n, 0xffff, uint16(r.Uint32())})
		q.publish(i)
		return "all flags"
	}
}

// badIndirect publishes a chain with a malformed indirect table.
func (at *attacker) badIndirect(d *dev, q *vq) string {
	r := at.rnd
	tbl, tp := d.buf(pageSize)
	_, bp := d.buf(64)
	put := func(i int, e desc) {
		b := tbl[16*i:]
		le.PutUint64(b, e.addr)
		le.PutUint32(b[8:], e.len)
		le.PutUint16(b[12:], e.flags)
		le.PutUint16(b[14:], e.next)
	}
	switch r.IntN(7) {
	case 0:
		put(0, desc{tp, 32, descIndirect, 0})
		q.publish(q.chain(desc{addr: tp, len: 32, flags: descIndirect}))
		return "nested indirect table"
	case 1:
		put(0, desc{bp, 64, 0, 0})
		q.publish(q.chain(desc{addr: tp, len: 16, flags: descIndirect | descNext, next: 1}))
		return "indirect with NEXT"
	case 2:
		q.publish(q.chain(desc{addr: tp, len: uint32(r.IntN(2) * (1 + r.IntN(15))), flags: descIndirect}))
		return "indirect table of a bad length"
	case 3:
		a, n := at.outside()
		q.publish(q.chain(desc{addr: a, len: n &^ 15, flags: descIndirect}))
		return "indirect table outside RAM"
	case 4:
		q.publish(q.chain(desc{addr: tp, len: (32768 + 1 + uint32(r.IntN(100))) * 16, flags: descIndirect}))
		return "indirect table of more than 32768 entries"
	case 5:
		for i := 0; i < 256; i++ {
			put(i, desc{bp, 64, descNext, uint16((i + 1) % 256)})
		}
		q.publish(q.chain(desc{addr: tp, len: 256 * 16, flags: descIndirect}))
		return "loop in an indirect table"
	}
	put(0, desc{bp, 64, descNext, uint16(1 + r.IntN(1000))})
	q.publish(q.chain(desc{addr: tp, len: 16, flags: descIndirect}))
	return "indirect next outside its table"
}

// vqMalformed: a device set up right is given one malformed chain; it
// must ask for a reset (or, for a queue it only reads when it has
// something to say, at least not break).
func (at *attacker) vqMalformed(d *dev) string {
	d.setup(layout{})
	at.prime(d)
	q := reqQueue(d)
	kind := at.badChain(d, q)
	d.notify(q.n)
	return kind + ": " + d.wait(nil, 0, hostileWait).String()
}

// vqRings: rings placed outside RAM, straddling its end or in a size the
// device does not take. DRIVER_OK must fail with a reset request.
func (at *attacker) vqRings(d *dev) string {
	r := at.rnd
	l := layout{descAt: map[int]uint64{}, availAt: map[int]uint64{}, usedAt: map[int]uint64{}}
	q := r.IntN(len(d.qs))
	what := ""
	switch r.IntN(4) {
	case 0:
		a, _ := at.outside()
		l.descAt[q], what = a, "descriptor table outside RAM"
	case 1:
		l.availAt[q], what = at.ramEnd-uint64(1+r.IntN(64)), "available ring straddling the end of RAM"
	case 2:
		a, _ := at.outside()
		l.usedAt[q], what = a, "used ring outside RAM"
	default:
		n := []uint32{0, 3, 100, 255, 512, 1024, 32768, 65535, 1 << 16, 1<<32 - 1}[r.IntN(10)]
		l.sizes = map[int]uint32{q: n}
		what = fmt.Sprintf("queue size %d", n)
	}
	st := d.setup(l)
	return fmt.Sprintf("%s: status %#x", what, st)
}

// vqFeatures: features the device never offered (or no VERSION_1) must
// be refused at FEATURES_OK, and a device whose features were refused
// must not start at DRIVER_OK.
func (at *attacker) vqFeatures(d *dev) string {
	r := at.rnd
	f := d.offered | 1<<uint(r.IntN(64))
	if r.IntN(3) == 0 {
		f = d.offered &^ featVersion1
	}
	if f == d.offered {
		f |= 1 << 63 // bit 63 is offered by no kiln device
	}
	st := d.setup(layout{features: f})
	if st&stFeaturesOK != 0 {
		at.problem(d, "FEATURES_OK accepted for features %#x (offered %#x)", f, d.offered)
	}
	q := reqQueue(d)
	at.goodRequest(d, q)
	d.notify(q.n)
	if o := d.wait(q, q.seen+1, hostileWait); o == outUsed {
		at.problem(d, "served a request without FEATURES_OK (status %#x)", d.status())
	}
	return fmt.Sprintf("features %#x refused: status %#x", f, st)
}

// vqEarly: requests and notifications before DRIVER_OK must wait for it.
func (at *attacker) vqEarly(d *dev) string {
	d.setup(layout{noDriverOK: true})
	q := reqQueue(d)
	at.goodRequest(d, q)
	d.notify(q.n)
	d.notify(int(at.rnd.Uint32()))
	if o := d.wait(q, q.seen+1, hostileWait); o == outUsed {
		at.problem(d, "served a request before DRIVER_OK")
	}
	d.w32(regStatus, d.status()|stDriverOK)
	at.prime(d)
	d.notify(q.n)
	return "notified before DRIVER_OK, then started: " + d.wait(q, q.seen+1, hostileWait).String()
}

// vqRegs: random accesses anywhere in the register window (and the
// configuration space after it), any width, aligned or not, while the
// device is set up and running.
func (at *attacker) vqRegs(d *dev) string {
	r := at.rnd
	if r.IntN(2) == 0 {
		d.setup(layout{})
		at.prime(d)
	}
	n := 5 + r.IntN(40)
	for i := 0; i < n; i++ {
		size := 1 << r.IntN(4)
		off := r.IntN(int(d.w.size) - size + 1)
		if r.IntN(3) > 0 {
			off = []int{regStatus, regQueueSel, regQueueNum, regQueueReady, regQueueNotify,
				regDriverFeatures, regDriverFeatSel, regDeviceFeatSel, regInterruptACK,
				regQueueDescLow, regQueueDrvLow, regQueueDevLow, regConfig, regConfig + 4,
				regConfigGen}[r.IntN(15)]
			size = 4
		}
		if r.IntN(2) == 0 {
			mmioRead(d.w.regs, off, size)
		} else {
			v := r.Uint64()
			if off == regStatus && r.IntN(2) == 0 {
				v = uint64(r.IntN(256))
			}
			mmioWrite(d.w.regs, off, size, v)
		}
	}
	return fmt.Sprintf("%d register accesses: status %#x", n, d.status())
}

// vqConfig: reads and writes all over the configuration space, past its
// end included.
func (at *attacker) vqConfig(d *dev) string {
	r := at.rnd
	n := 4 + r.IntN(20)
	for i := 0; i < n; i++ {
		size := 1 << r.IntN(4)
		off := regConfig + r.IntN(int(d.w.size)-regConfig-size+1)
		if r.IntN(2) == 0 {
			mmioRead(d.w.regs, off, size)
		} else {
			mmioWrite(d.w.regs, off, size, r.Uint64())
		}
	}
	return fmt.Sprintf("%d configuration-space accesses", n)
}

// vqStatusGames: a running device sees its status bits cleared and set
// again, features rewritten and its queues moved; kiln must ignore what
// a running device cannot take, and go on or ask for a reset.
func (at *attacker) vqStatusGames(d *dev) string {
	r := at.rnd
	st := d.setup(layout{})
	at.prime(d)
	for i := 0; i < 1+r.IntN(6); i++ {
		switch r.IntN(6) {
		case 0:
			d.w32(regStatus, st&^uint32(1<<r.IntN(4)))
		case 1:
			d.w32(regStatus, st|stFailed)
		case 2:
			d.w32(regDriverFeatSel, uint32(r.IntN(3)))
			d.w32(regDriverFeatures, r.Uint32())
		case 3:
			d.w32(regQueueSel, uint32(r.IntN(4)))
			a, _ := at.outside()
			d.setAddr(regQueueDescLow, a)
			d.w32(regQueueNum, uint32(r.IntN(1<<16)))
		case 4:
			d.w32(regQueueReady, uint32(r.IntN(2)))
		default:
			d.w32(regStatus, st|stDriverOK|stNeedsReset)
		}
	}
	q := reqQueue(d)
	at.goodRequest(d, q)
	d.notify(q.n)
	return "status games, then a request: " + d.wait(q, q.seen+1, hostileWait).String()
}

// vqResetRace: good requests in flight, then a reset at once. When the
// write of 0 to Status returns, kiln's device must no longer write guest
// memory: the used ring stays as it is.
func (at *attacker) vqResetRace(d *dev) string {
	d.setup(layout{})
	at.prime(d)
	q := reqQueue(d)
	n := 1 + at.rnd.IntN(int(min(q.size, 32)))
	for i := 0; i < n; i++ {
		at.goodRequest(d, q)
	}
	d.notify(q.n)
	d.w32(regStatus, 0)
	before := q.usedIdx()
	snapshot := append([]byte(nil), q.used[:8+8*int(q.size)]...)
	time.Sleep(hostileWait)
	if q.usedIdx() != before || string(q.used[:len(snapshot)]) != string(snapshot) {
		at.problem(d, "the used ring changed after the device was reset (idx %d -> %d)", before, q.usedIdx())
	}
	return fmt.Sprintf("%d requests, reset with %d used", n, before)
}

// goodRequest publishes one well-formed request on q (the device type's
// simplest) and returns what the device should answer it with.
func (at *attacker) goodRequest(d *dev, q *vq) {
	switch d.w.id {
	case idBlock:
		hdr := make([]byte, 16) // IN, sector 0
		_, sp := d.buf(1)
		_, dp := d.buf(512)
		q.publish(q.chain(desc{addr: d.data(hdr), len: 16},
			desc{addr: dp, len: 512, flags: descWrite}, desc{addr: sp, len: 1, flags: descWrite}))
	case idVsock:
		// A credit request for no connection: the device answers RST.
		q.publish(q.chain(desc{addr: d.data(vsockHdr(at.cid, 2, 1000, 1, vsockOpCreditRequest, 0, 64<<10, 0, 0)), len: vsockHdrLen}))
	case id9P:
		req := p9Version(0xffff, 8192, "9P2000.L")
		_, rp := d.buf(256)
		q.publish(q.chain(desc{addr: d.data(req), len: uint32(len(req))}, desc{addr: rp, len: 256, flags: descWrite}))
	case idNet:
		frame := make([]byte, 12+60)
		q.publish(q.chain(desc{addr: d.data(frame), len: uint32(len(frame))}))
	default: // rng
		_, p := d.buf(64)
		q.publish(q.chain(desc{addr: p, len: 64, flags: descWrite}))
	}
}

// prime gives a device the buffers it needs to talk back: receive buffers
// for vsock and net.
func (at *attacker) prime(d *dev) {
	if (d.w.id != idVsock && d.w.id != idNet) || len(d.qs) == 0 || d.qs[0].size == 0 {
		return
	}
	q := d.qs[0]
	for i := 0; i < int(min(q.size, 32)); i++ {
		_, p := d.buf(pageSize)
		q.publish(q.chain(desc{addr: p, len: pageSize, flags: descWrite}))
	}
	d.notify(0)
}

// serves checks that a device, reset and set up right, answers a good
// request: a device that broke on hostile input must come back after a
// reset, and one that stalls is a denial of service.
func (at *attacker) serves(d *dev) bool {
	d.setup(layout{})
	at.prime(d)
	q := reqQueue(d)
	at.goodRequest(d, q)
	d.notify(q.n)
	want := q.seen + 1
	if d.w.id == idVsock {
		q, want = d.qs[0], 1 // the answer is an RST on the receive queue
	}
	switch o := d.wait(q, want, serveWait); o {
	case outUsed:
		return true
	default:
		at.problem(d, "a good request after a reset got %v (status %#x)", o, d.status())
		return false
	}
}

// breakForGood leaves d asking for a reset, for the end of the attack:
// kiln's report must show it with its reason.
func (at *attacker) breakForGood(d *dev) bool {
	d.setup(layout{})
	q := reqQueue(d)
	q.publish(q.size + 7)
	d.notify(q.n)
	if d.wait(nil, 0, serveWait) != outNeedsReset {
		at.problem(d, "a head outside the queue did not make the device ask for a reset (status %#x)", d.status())
		return false
	}
	return true
}
