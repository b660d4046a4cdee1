package share

import (
	"encoding/binary"

	"github.com/hugelgupf/p9/linux"
)

// 9P2000.L message types (Linux include/net/9p/9p.h); a reply's type is
// its request's plus one.
const (
	rLerror      = 7
	tStatfs      = 8
	tLopen       = 12
	tLcreate     = 14
	tSymlink     = 16
	tMknod       = 18
	tRename      = 20
	tReadlink    = 22
	tGetattr     = 24
	tSetattr     = 26
	tXattrwalk   = 30
	tXattrcreate = 32
	tReaddir     = 40
	tFsync       = 50
	tLock        = 52
	tGetlock     = 54
	tLink        = 70
	tMkdir       = 72
	tRenameat    = 74
	tUnlinkat    = 76
	tVersion     = 100
	tAuth        = 102
	tAttach      = 104
	tFlush       = 108
	tWalk        = 110
	tRead        = 116
	tWrite       = 118
	tClunk       = 120
	tRemove      = 122

	// The library's multi-user variants (9P2000.L.Google): the same
	// message with the creating uid[4] appended. Only kiln sends them.
	tUcreate  = 128
	tUmkdir   = 130
	tUmknod   = 132
	tUsymlink = 134
)

// Sizes and sentinels of the wire format.
const (
	hdrLen     = 7 // size[4] type[1] tag[2]
	rlerrorLen = hdrLen + 4
	ioHdrLen   = hdrLen + 4 // Rread, Rreaddir: count[4] before the data
	noTag      = 0xffff
	noFID      = 0xffffffff
	noUID      = 0xffffffff
	maxWalk    = 16 // names in one Twalk (MAXWELEM)
)

// layouts are the fields of each T-message kiln accepts, after the
// header: '1', '2', '4', '8' a little-endian integer of that many bytes,
// 's' a string (length[2] then bytes), 'w' a walk's names (count[2], then
// that many strings). Twrite's data follows its count. These are the
// layouts the library decodes (p9/messages.go), so a message that passes
// here decodes there. A type without a layout is refused with ENOSYS.
var layouts = [256]string{
	tStatfs:      "4",          // fid
	tLopen:       "44",         // fid flags
	tLcreate:     "4s444",      // fid name flags mode gid
	tSymlink:     "4ss4",       // dfid name target gid
	tMknod:       "4s4444",     // dfid name mode major minor gid
	tRename:      "44s",        // fid dfid name
	tReadlink:    "4",          // fid
	tGetattr:     "48",         // fid request_mask
	tSetattr:     "4444488888", // fid valid mode uid gid size atime(2) mtime(2)
	tXattrwalk:   "44s",        // fid newfid name
	tXattrcreate: "4s84",       // fid name attr_size flags
	tReaddir:     "484",        // fid offset count
	tFsync:       "4",          // fid (Linux adds datasync[4]: ignored)
	tLock:        "414884s",    // fid type flags start length proc_id client_id
	tGetlock:     "41884s",     // fid type start length proc_id client_id
	tLink:        "44s",        // dfid fid name
	tMkdir:       "4s44",       // dfid name mode gid
	tRenameat:    "4s4s",       // olddirfid oldname newdirfid newname
	tUnlinkat:    "4s4",        // dfid name flags
	tVersion:     "4s",         // msize version
	tAuth:        "4ss4",       // afid uname aname n_uname
	tAttach:      "44ss4",      // fid afid uname aname n_uname
	tFlush:       "2",          // oldtag
	tWalk:        "44w",        // fid newfid names
	tRead:        "484",        // fid offset count
	tWrite:       "484",        // fid offset count, then count bytes
	tClunk:       "4",          // fid
	tRemove:      "4",          // fid
}

var le = binary.LittleEndian

// msg is a T-message whose layout was checked: b is exactly the message,
// at[i] is where field i starts, end where the last one ends.
type msg struct {
	b   []byte
	typ byte
	tag uint16
	at  [10]int
	end int
}

// tagOf is the tag of a message too broken to parse, if it has one.
func tagOf(b []byte) uint16 {
	if len(b) < hdrLen {
		return noTag
	}
	return le.Uint16(b[5:])
}

// parse checks that b holds one well-formed T-message of a type kiln
// serves. The errno says what is wrong: EINVAL for a malformed message,
// ENOSYS for a type kiln does not serve.
func parse(b []byte) (*msg, error) {
	if len(b) < hdrLen {
		return nil, linux.EINVAL
	}
	size := le.Uint32(b)
	if size < hdrLen || uint64(size) > uint64(len(b)) {
		return nil, linux.EINVAL
	}
	m := &msg{b: b[:size], typ: b[4], tag: le.Uint16(b[5:])}
	layout := layouts[m.typ]
	if layout == "" {
		return nil, linux.ENOSYS
	}
	off, n := hdrLen, int(size)
	str := func() bool {
		if off+2 > n {
			return false
		}
		off += 2 + int(le.Uint16(m.b[off:]))
		return off <= n
	}
	for i, c := range layout {
		m.at[i] = off
		switch c {
		case 's':
			if !str() {
				return nil, linux.EINVAL
			}
		case 'w':
			if off+2 > n {
				return nil, linux.EINVAL
			}
			count := int(le.Uint16(m.b[off:]))
			if count > maxWalk {
				return nil, linux.EINVAL
			}
			off += 2
			for range count {
				if !str() {
					return nil, linux.EINVAL
				}
			}
		default:
			off += int(c - '0')
			if off > n {
				return nil, linux.EINVAL
			}
		}
	}
	m.end = off
	if m.typ == tWrite && uint64(m.u32(2)) != uint64(n-off) {
		return nil, linux.EINVAL // the library wants count == the data's length
	}
	return m, nil
}

func (m *msg) u8(i int) uint8   { return m.b[m.at[i]] }
func (m *msg) u16(i int) uint16 { return le.Uint16(m.b[m.at[i]:]) }
func (m *msg) u32(i int) uint32 { return le.Uint32(m.b[m.at[i]:]) }
func (m *msg) u64(i int) uint64 { return le.Uint64(m.b[m.at[i]:]) }

func (m *msg) put32(i int, v uint32) { le.PutUint32(m.b[m.at[i]:], v) }

// str is string field i.
func (m *msg) str(i int) string {
	o := m.at[i]
	return string(m.b[o+2 : o+2+int(le.Uint16(m.b[o:]))])
}

// names is walk field i's names.
func (m *msg) names(i int) []string {
	o := m.at[i]
	n := int(le.Uint16(m.b[o:]))
	names := make([]string, 0, n)
	o += 2
	for range n {
		l := int(le.Uint16(m.b[o:]))
		names = append(names, string(m.b[o+2:o+2+l]))
		o += 2 + l
	}
	return names
}

// newMsg makes a message of type typ with room for an n-byte body.
func newMsg(typ byte, tag uint16, n int) []byte {
	b := make([]byte, hdrLen+n)
	le.PutUint32(b, uint32(len(b)))
	b[4] = typ
	le.PutUint16(b[5:], tag)
	return b
}

// rlerror is the error reply: Rlerror with a Linux errno.
func rlerror(tag uint16, err error) []byte {
	b := newMsg(rLerror, tag, 4)
	le.PutUint32(b[hdrLen:], uint32(linux.ExtractErrno(errno(err))))
	return b
}
