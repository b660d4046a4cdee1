package main

import (
	"fmt"
	"strings"
)

// 9P2000.L messages (size[4] type[1] tag[2] body), built by hand so that
// any field can lie.

const (
	p9Tstatfs      = 8
	p9Tlopen       = 12
	p9Tlcreate     = 14
	p9Tsymlink     = 16
	p9Tgetattr     = 24
	p9Tsetattr     = 26
	p9Txattrwalk   = 30
	p9Txattrcreate = 32
	p9Treaddir     = 40
	p9Tfsync       = 50
	p9Tlock        = 52
	p9Tmkdir       = 72
	p9Trenameat    = 74
	p9Tunlinkat    = 76
	p9Tversion     = 100
	p9Tattach      = 104
	p9Tflush       = 108
	p9Twalk        = 110
	p9Tread        = 116
	p9Twrite       = 118
	p9Tclunk       = 120
	p9Tremove      = 122
	p9NoFID        = 0xffffffff
)

// p9msg builds a message; size is filled in by done.
type p9msg struct{ b []byte }

func newP9(typ uint8, tag uint16) *p9msg {
	m := &p9msg{b: make([]byte, 7, 64)}
	m.b[4] = typ
	le.PutUint16(m.b[5:], tag)
	return m
}

func (m *p9msg) u8(v uint8) *p9msg   { m.b = append(m.b, v); return m }
func (m *p9msg) u16(v uint16) *p9msg { m.b = le.AppendUint16(m.b, v); return m }
func (m *p9msg) u32(v uint32) *p9msg { m.b = le.AppendUint32(m.b, v); return m }
func (m *p9msg) u64(v uint64) *p9msg { m.b = le.AppendUint64(m.b, v); return m }
func (m *p9msg) str(s string) *p9msg { m.u16(uint16(len(s))); m.b = append(m.b, s...); return m }
func (m *p9msg) done() []byte        { le.PutUint32(m.b, uint32(len(m.b))); return m.b }

func p9Version(tag uint16, msize uint32, version string) []byte {
	return newP9(p9Tversion, tag).u32(msize).str(version).done()
}

// p9Name is a name a guest might send: ordinary, empty, a dot or two, a
// slash, a NUL, or longer than any file system takes.
func (at *attacker) p9Name() string {
	r := at.rnd
	switch r.IntN(9) {
	case 0:
		return ""
	case 1:
		return "."
	case 2:
		return ".."
	case 3:
		return "a/../../b"
	case 4:
		return "x\x00y"
	case 5:
		return strings.Repeat("n", 256+r.IntN(4000))
	case 6:
		return "/etc"
	}
	return fmt.Sprintf("f%d", r.IntN(8))
}

// p9Message returns one T-message, plausible or not.
func (at *attacker) p9Message(tag uint16) []byte {
	r := at.rnd
	fid := func() uint32 { return []uint32{0, 1, 2, 3, r.Uint32(), p9NoFID}[r.IntN(6)] }
	count := func() uint32 { return []uint32{0, 1, 4096, 1 << 20, 1<<32 - 1, r.Uint32()}[r.IntN(6)] }
	var b []byte
	switch r.IntN(22) {
	case 0:
		b = p9Version(tag, []uint32{0, 11, 4096, 8192, 512000, 1 << 30, r.Uint32()}[r.IntN(7)],
			[]string{"9P2000.L", "9P2000", "9P2000.L.Google.99", "", strings.Repeat("9", 300)}[r.IntN(5)])
	case 1:
		b = newP9(p9Tattach, tag).u32(fid()).u32(p9NoFID).str("root").str(at.p9Name()).u32(r.Uint32N(2000)).done()
	case 2:
		m := newP9(p9Twalk, tag).u32(fid()).u32(fid())
		n := []int{0, 1, 2, 16, 17, 100}[r.IntN(6)]
		m.u16(uint16(n))
		for i := 0; i < n; i++ {
			m.str(at.p9Name())
		}
		b = m.done()
	case 3:
		b = newP9(p9Tlopen, tag).u32(fid()).u32(r.Uint32()).done()
	case 4:
		b = newP9(p9Tlcreate, tag).u32(fid()).str(at.p9Name()).u32(r.Uint32()).u32(r.Uint32()).u32(r.Uint32()).done()
	case 5:
		b = newP9(p9Tread, tag).u32(fid()).u64(r.Uint64() >> uint(r.IntN(64))).u32(count()).done()
	case 6:
		n := r.IntN(5000)
		m := newP9(p9Twrite, tag).u32(fid()).u64(uint64(r.IntN(1 << 20))).u32([]uint32{uint32(n), count()}[r.IntN(2)])
		m.b = append(m.b, make([]byte, n)...)
		b = m.done()
	case 7:
		b = newP9(p9Tclunk, tag).u32(fid()).done()
	case 8:
		b = newP9(p9Tgetattr, tag).u32(fid()).u64(r.Uint64()).done()
	case 9:
		b = newP9(p9Treaddir, tag).u32(fid()).u64(r.Uint64() >> uint(r.IntN(64))).u32(count()).done()
	case 10:
		b = newP9(p9Tmkdir, tag).u32(fid()).str(at.p9Name()).u32(r.Uint32()).u32(0).done()
	case 11:
		b = newP9(p9Tstatfs, tag).u32(fid()).done()
	case 12:
		b = newP9(p9Tflush, tag).u16(uint16(r.Uint32())).done()
	case 13:
		b = newP9(p9Txattrwalk, tag).u32(fid()).u32(fid()).str([]string{"", "user.x", at.p9Name()}[r.IntN(3)]).done()
	case 14:
		b = newP9(p9Txattrcreate, tag).u32(fid()).str("user.a").u64([]uint64{0, 1 << 16, 1 << 40, r.Uint64()}[r.IntN(4)]).u32(r.Uint32N(4)).done()
	case 15:
		b = newP9(p9Tunlinkat, tag).u32(fid()).str(at.p9Name()).u32(r.Uint32()).done()
	case 16:
		b = newP9(p9Trenameat, tag).u32(fid()).str(at.p9Name()).u32(fid()).str(at.p9Name()).done()
	case 17:
		b = newP9(p9Tsymlink, tag).u32(fid()).str(at.p9Name()).str("/../../../etc/passwd").u32(0).done()
	case 18:
		b = newP9(p9Tlock, tag).u32(fid()).u8(uint8(r.IntN(4))).u32(r.Uint32()).u64(r.Uint64()).u64(r.Uint64()).u32(1).str(at.p9Name()).done()
	case 19:
		b = newP9(p9Tsetattr, tag).u32(fid()).u32(r.Uint32()).u32(r.Uint32()).u32(r.Uint32()).u32(r.Uint32()).
			u64(r.Uint64() >> uint(r.IntN(64))).u64(0).u64(0).u64(0).u64(0).done()
	case 20:
		b = newP9(uint8(r.Uint32()), tag).done()
		b = append(b, make([]byte, r.IntN(64))...)
	default:
		b = newP9(p9Tfsync, tag).u32(fid()).u32(0).done()
	}
	// The size field lies now and then, and the message may be cut.
	switch r.IntN(8) {
	case 0:
		le.PutUint32(b, []uint32{0, 6, 7, uint32(len(b)) + 1, 1 << 31, r.Uint32()}[r.IntN(6)])
	case 1:
		b = b[:r.IntN(len(b)+1)]
	}
	return b
}

// p9Attack opens a session (Tversion, Tattach), then sends a batch of
// messages: walks out of the share, reads and writes of absurd counts,
// names with slashes and NULs, unknown types, sizes that lie, replies
// with no room, all queued at once.
func (at *attacker) p9Attack(d *dev) string {
	r := at.rnd
	d.setup(layout{})
	q := d.qs[0]
	reply := func(room uint32) desc {
		_, p := d.buf(int(min(room, pageSize)))
		return desc{addr: p, len: min(room, pageSize), flags: descWrite}
	}
	post := func(req []byte, room desc) {
		at.publishLong(d, q, []desc{{addr: d.data(req), len: uint32(len(req))}, room})
	}
	post(p9Version(1, 8192, "9P2000.L"), reply(256))
	post(newP9(p9Tattach, 2).u32(0).u32(p9NoFID).str("root").str("").u32(0).done(), reply(256))
	n := 1 + r.IntN(int(min(q.size, 120)))
	for i := 0; i < n; i++ {
		req := at.p9Message(uint16(r.IntN(8)))
		if len(req) > pageSize {
			req = req[:pageSize]
		}
		var room desc
		switch r.IntN(12) {
		case 0:
			room = reply(uint32(r.IntN(11))) // less than an Rlerror
		case 1:
			_, p := d.big()
			room = desc{addr: p, len: uint32(d.a.bigPages * pageSize), flags: descWrite}
		default:
			room = reply(uint32(11 + r.IntN(pageSize-11)))
		}
		if len(req) == 0 {
			q.publish(q.chain(room))
			continue
		}
		post(req, room)
	}
	d.notify(0)
	return fmt.Sprintf("%d 9P messages: %v", n, d.wait(q, uint16(n+2), hostileWait))
}
