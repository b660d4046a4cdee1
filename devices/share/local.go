package share

import (
	"errors"
	"strconv"
	"sync"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// The requests kiln answers itself, beside the library: Txattrwalk (the
// library's shares the walked fid's File with the new fid, and its clunk
// closes that File and drops a parent reference it never took), Tgetlock
// (the library has none), and a Tunlinkat of a name that is not there. Both need the file behind a guest fid,
// which only the library's fid table knows. Kiln asks it with a probe: an
// internal Txattrwalk on the fid for a name no guest can send (guest
// Txattrwalks never reach the library, and xattr names have no NUL). The
// library looks the fid up, checks it, and calls that file's GetXattr,
// which recognizes the name, hands kiln the file and fails, so the library
// makes no new fid.

// maxXattrFids bounds the xattr fids kiln holds values for in a session.
const maxXattrFids = 64

// probes are the lookups in flight, by name.
type probes struct {
	mu   sync.Mutex
	next uint64
	got  map[string]*file
	view map[string]bool // probes that found a view's root (view.go)
}

const probePrefix = "\x00kiln-probe-"

// start registers a new probe and returns its name.
func (p *probes) start() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.got == nil {
		p.got = map[string]*file{}
	}
	p.next++
	name := probePrefix + strconv.FormatUint(p.next, 10)
	p.got[name] = nil
	return name
}

// found is GetXattr's check: if name is a probe in flight, it records f.
func (p *probes) found(name string, f *file) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.got[name]; !ok {
		return false
	}
	p.got[name] = f
	return true
}

// foundView is the view root's GetXattr check: if name is a probe in
// flight, it records that the fid holds the root of a view.
func (p *probes) foundView(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.got[name]; !ok {
		return false
	}
	if p.view == nil {
		p.view = map[string]bool{}
	}
	p.view[name] = true
	return true
}

// take ends a probe and returns the file it found, if any, or
// errViewRoot if it found a view's root.
func (p *probes) take(name string) (*file, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, view := p.got[name], p.view[name]
	delete(p.got, name)
	delete(p.view, name)
	if view {
		return nil, errViewRoot
	}
	return f, nil
}

// errViewRoot is lookup's answer for the root of a view: a directory of
// kiln's own, with no host file behind it.
var errViewRoot = errors.New("the root of a view")

// lookup finds the file behind the guest's fid through the library, which
// also applies its checks (an unknown fid is EBADF, a removed file EINVAL).
func (s *session) lookup(fid uint32) (*file, error) {
	name := s.share.probes.start()
	b := newMsg(tXattrwalk, 0, 4+4+2+len(name))
	le.PutUint32(b[hdrLen:], fid)
	le.PutUint32(b[hdrLen+4:], noFID)
	le.PutUint16(b[hdrLen+8:], uint16(len(name)))
	copy(b[hdrLen+10:], name)
	r := s.roundTrip(b, noTag, rlerrorLen+64)
	if f, err := s.share.probes.take(name); f != nil || err != nil {
		return f, err
	}
	if r[4] == rLerror && len(r) >= rlerrorLen {
		return nil, linux.Errno(le.Uint32(r[hdrLen:]))
	}
	return nil, linux.EIO
}

// unlinkable answers ENOENT for a Tunlinkat of a name that does not exist,
// before the library sees it: the library adds the name to its path tree
// before it unlinks, and keeps it when the unlink fails, so unlinks of
// made-up names would grow kiln's memory without bound.
func (s *session) unlinkable(dfid uint32, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	f, err := s.lookup(dfid)
	if err == errViewRoot {
		return linux.EROFS // and the library's path tree learns no name
	}
	if err != nil {
		return err
	}
	err = f.with(func(fd int) error {
		var st unix.Stat_t
		return unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err == linux.ENOENT {
		return err
	}
	return nil // anything else is the unlink's to report
}

// xattrWalk is Txattrwalk: it reads the named attribute (or, for an empty
// name, the list of names) now, and serves it on newfid until the guest
// clunks newfid. Rxattrwalk tells the guest the size.
func (s *session) xattrWalk(m *msg, room int) []byte {
	fid, newfid, name := m.u32(0), m.u32(1), m.str(2)
	s.mu.Lock()
	_, busy := s.fids[newfid]
	full := s.xattrs >= maxXattrFids
	s.mu.Unlock()
	if busy || newfid == fid || newfid == noFID {
		return rlerror(m.tag, linux.EINVAL) // a new fid must be new
	}
	if full {
		return rlerror(m.tag, linux.ENFILE)
	}
	f, err := s.lookup(fid)
	if err == errViewRoot {
		return rlerror(m.tag, linux.EOPNOTSUPP) // kiln's directory has no attributes
	}
	if err != nil {
		return rlerror(m.tag, err)
	}
	var val []byte
	if name == "" {
		names, err := f.ListXattrs()
		if err != nil {
			return rlerror(m.tag, err)
		}
		for _, n := range names {
			val = append(append(val, n...), 0)
		}
	} else if val, err = f.getXattr(name); err != nil {
		return rlerror(m.tag, err)
	}
	if len(val) > xattrMax {
		return rlerror(m.tag, linux.E2BIG)
	}
	s.mu.Lock()
	s.setFidLocked(newfid, &fidState{uid: noUID, xattr: val, isXattr: true})
	s.xattrs++
	s.mu.Unlock()
	r := newMsg(tXattrwalk+1, m.tag, 8)
	le.PutUint64(r[hdrLen:], uint64(len(val)))
	return r
}

// readXattr is Tread on an xattr fid.
func (s *session) readXattr(m *msg, st *fidState, room int) []byte {
	s.clampCount(m, 2, room, int(s.msize.Load()))
	off, count := m.u64(1), int(m.u32(2))
	var data []byte
	if off < uint64(len(st.xattr)) {
		data = st.xattr[off:]
	}
	data = data[:min(len(data), count)]
	r := newMsg(tRead+1, m.tag, 4+len(data))
	le.PutUint32(r[hdrLen:], uint32(len(data)))
	copy(r[ioHdrLen:], data)
	return r
}

// getLock is Tgetlock: is there a lock that would block this one? It
// answers from F_OFD_GETLK on the fid's open file: the blocking lock, or
// the request back with type "unlocked" if none would block.
func (s *session) getLock(m *msg, room int) []byte {
	client := m.str(5)
	n := 1 + 8 + 8 + 4 + 2 + len(client)
	if hdrLen+n > room {
		return rlerror(m.tag, linux.ERANGE)
	}
	f, err := s.lookup(m.u32(0))
	if err == errViewRoot {
		return rlerror(m.tag, linux.ENOLCK) // kiln's directory takes no locks
	}
	if err != nil {
		return rlerror(m.tag, err)
	}
	typ, start, length, pid, err := f.getLock(p9.LockType(m.u8(1)), m.u64(2), m.u64(3))
	if err != nil {
		return rlerror(m.tag, err)
	}
	if typ == p9.Unlock {
		start, length, pid = m.u64(2), m.u64(3), int32(m.u32(4))
	}
	r := newMsg(tGetlock+1, m.tag, n)
	b := r[hdrLen:]
	b[0] = byte(typ)
	le.PutUint64(b[1:], start)
	le.PutUint64(b[9:], length)
	le.PutUint32(b[17:], uint32(pid))
	le.PutUint16(b[21:], uint16(len(client)))
	copy(b[23:], client)
	return r
}
