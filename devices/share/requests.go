package share

import (
	"github.com/hugelgupf/p9/linux"
)

// What kiln adds to a request before the library sees it, and learns from
// the reply. The library keeps the real fid table; kiln keeps, per fid,
// the little it needs itself: who attached it (for ownership of new
// files), the xattrs it serves or the library buffers on it, and what a
// snapshot needs to make the fid again in a restored VM (snapshot.go):
// the names walked from its root, and the flags it was opened with.
type fidState struct {
	uid     uint32 // Tattach's n_uname; noUID if unknown
	xattr   []byte // a Txattrwalk's value, served by kiln (local.go)
	isXattr bool
	pending int64 // a Txattrcreate's size the library buffers for it

	aname   string   // the attach name of the root it was walked from
	path    []string // the names from that root to the file
	opened  bool     // by Tlopen or Tlcreate, with flags
	flags   uint32   // the open's flags, Linux's O_ values
	removed bool     // the guest unlinked the file (or a directory above it)
}

// maxPending bounds what Txattrcreates may make the library buffer, over
// all of a session's fids.
const maxPending = 1 << 20

// ucreate maps each creating request to its variant with a uid, and each
// variant's reply back to the reply the guest expects.
var ucreate = map[byte]byte{tLcreate: tUcreate, tMkdir: tUmkdir, tMknod: tUmknod, tSymlink: tUsymlink}

// serve answers one checked T-message in this session.
func (s *session) serve(m *msg, room int) []byte {
	msize := int(s.msize.Load())
	uid := uint32(noUID)
	switch m.typ {
	case tRead:
		if x := s.xattrFid(m.u32(0)); x != nil {
			return s.readXattr(m, x, room)
		}
		s.clampCount(m, 2, room, msize)
	case tReaddir:
		s.clampCount(m, 2, room, msize)
	case tClunk, tRemove:
		if st := s.dropFid(m.u32(0)); st != nil && st.isXattr {
			if m.typ == tClunk {
				return newMsg(tClunk+1, m.tag, 0)
			}
			return rlerror(m.tag, linux.EINVAL)
		}
	case tUnlinkat:
		if err := s.unlinkable(m.u32(0), m.str(1)); err != nil {
			return rlerror(m.tag, err)
		}
	case tXattrwalk:
		return s.xattrWalk(m, room)
	case tGetlock:
		return s.getLock(m, room)
	case tXattrcreate:
		if err := s.reservePending(m); err != nil {
			return rlerror(m.tag, err)
		}
	case tFlush:
		tag, ok := s.kilnTag(m.u16(0))
		if !ok {
			return newMsg(tFlush+1, m.tag, 0) // nothing of that tag in flight
		}
		le.PutUint16(m.b[m.at[0]:], tag)
	case tLcreate, tMkdir, tMknod, tSymlink:
		if err := checkName(m.str(1)); err != nil {
			return rlerror(m.tag, err)
		}
		uid = s.uidOf(m.u32(0))
	}
	b := m.b
	if uid != noUID {
		// As the multi-user variant: the fields, then the uid.
		b = append(b[:m.end:m.end], 0, 0, 0, 0)
		le.PutUint32(b[m.end:], uid)
		le.PutUint32(b, uint32(len(b)))
		b[4] = ucreate[m.typ]
		if len(b) > msize {
			return rlerror(m.tag, linux.ENAMETOOLONG)
		}
	}

	r := s.roundTrip(b, m.tag, room)
	le.PutUint16(r[5:], m.tag)
	if r[4] == rLerror {
		if m.typ == tXattrcreate {
			s.mu.Lock()
			s.pending -= int64(m.u64(2)) // give back the reservation
			s.mu.Unlock()
		}
		return r
	}
	if uid != noUID {
		r[4] = m.typ + 1 // Rucreate is Rlcreate, and so on
	}
	s.learn(m, r)
	return r
}

// clampCount cuts the count of a Tread or Treaddir so the reply fits both
// msize and the chain's room: the guest cannot make kiln read more than it
// can take.
func (s *session) clampCount(m *msg, field, room, msize int) {
	limit := uint32(max(min(room, msize)-ioHdrLen, 0))
	if m.u32(field) > limit {
		m.put32(field, limit)
	}
}

// learn records what a successful reply r did to the guest's fids.
func (s *session) learn(m *msg, r []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m.typ {
	case tAttach:
		s.setFidLocked(m.u32(0), &fidState{uid: m.u32(4), aname: m.str(3)})
	case tWalk:
		names := m.names(2)
		if len(r) < hdrLen+2 || int(le.Uint16(r[hdrLen:])) != len(names) {
			return // a walk that stopped short makes no fid (9P: walk(5))
		}
		st := &fidState{uid: noUID}
		if from := s.fids[m.u32(0)]; from != nil {
			st.uid, st.aname, st.removed = from.uid, from.aname, from.removed
			st.path = append(append([]string(nil), from.path...), names...)
		}
		s.setFidLocked(m.u32(1), st)
	case tLopen:
		if st := s.fids[m.u32(0)]; st != nil {
			st.opened, st.flags = true, m.u32(1)
		}
	case tLcreate:
		// The fid, a directory's, is now the new file's, open.
		if st := s.fids[m.u32(0)]; st != nil {
			st.path = append(append([]string(nil), st.path...), m.str(1))
			st.opened, st.flags = true, m.u32(2)
		}
	case tRenameat:
		s.renamedLocked(s.fids[m.u32(0)], m.str(1), s.fids[m.u32(2)], m.str(3))
	case tRename:
		if st, dir := s.fids[m.u32(0)], s.fids[m.u32(1)]; st != nil && len(st.path) > 0 {
			parent := &fidState{aname: st.aname, path: st.path[:len(st.path)-1]}
			s.renamedLocked(parent, st.path[len(st.path)-1], dir, m.str(2))
		}
	case tUnlinkat:
		if dir := s.fids[m.u32(0)]; dir != nil {
			gone := append(append([]string(nil), dir.path...), m.str(1))
			for _, st := range s.fids {
				if st.aname == dir.aname && hasPrefix(st.path, gone) {
					st.removed = true
				}
			}
		}
	case tXattrcreate:
		// The library now buffers this value for the fid, in place of
		// any earlier one.
		if st := s.fids[m.u32(0)]; st != nil {
			s.pending -= st.pending
			st.pending = int64(m.u64(2))
		} else {
			s.pending -= int64(m.u64(2))
		}
	}
}

// setFidLocked installs a fid's state, forgetting what the fid held.
func (s *session) setFidLocked(fid uint32, st *fidState) {
	s.forgetLocked(s.fids[fid])
	s.fids[fid] = st
}

func (s *session) forgetLocked(st *fidState) {
	if st == nil {
		return
	}
	s.pending -= st.pending
	if st.isXattr {
		s.xattrs--
	}
}

// dropFid forgets a fid being clunked or removed and returns its state.
func (s *session) dropFid(fid uint32) *fidState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.fids[fid]
	s.forgetLocked(st)
	delete(s.fids, fid)
	return st
}

// uidOf is the guest user a fid was attached by.
func (s *session) uidOf(fid uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.fids[fid]; st != nil {
		return st.uid
	}
	return noUID
}

// xattrFid returns the state of a fid kiln serves an xattr on, or nil.
func (s *session) xattrFid(fid uint32) *fidState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.fids[fid]; st != nil && st.isXattr {
		return st
	}
	return nil
}

// reservePending admits a Txattrcreate: the library will buffer up to its
// size from later Twrites, so the size is bounded per value (64 KiB, the
// kernel's limit) and over the session. A read-only share refuses at once.
func (s *session) reservePending(m *msg) error {
	if s.share.readOnly {
		return linux.EROFS
	}
	size := m.u64(2)
	if size > xattrMax {
		return linux.E2BIG
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending+int64(size) > maxPending {
		return linux.ENOSPC
	}
	s.pending += int64(size)
	return nil
}
