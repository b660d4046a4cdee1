package share

import (
	"strings"
	"sync"

	"github.com/hugelgupf/p9/linux"
)

// Message sizes kiln negotiates. MaxMsize is above the largest the Linux
// virtio transport asks for (512000: 125 pages); MinMsize is the smallest
// Linux accepts, and leaves room for any one name or symlink target.
const (
	MaxMsize = 512 << 10
	MinMsize = 4096
)

// Server answers the 9P messages of one virtio-9p device from a Share (it
// is the device's virtio.P9Server): one T-message in, one R-message out. It is safe for concurrent use, and
// replies may come in any order; a request blocked on the host blocks only
// its caller. Requests before the first Tversion, and after one that
// failed, get EINVAL.
type Server struct {
	share *Share
	mu    sync.Mutex
	sess  *session
}

// NewServer serves share. Several servers (devices) may share a Share.
func NewServer(share *Share) *Server { return &Server{share: share} }

// Handle answers the T-message at the start of req with an R-message of at
// most room bytes. A malformed message gets Rlerror(EINVAL). room must be
// at least 11 bytes, an Rlerror's size; with less, Handle returns nil.
func (s *Server) Handle(req []byte, room int) []byte {
	if room < rlerrorLen {
		return nil
	}
	m, err := parse(req)
	if err != nil {
		return rlerror(tagOf(req), err)
	}
	// The request uses the share's descriptors until it is answered;
	// once the share is closed (the VM ends) it is refused.
	if !s.share.hold() {
		return rlerror(m.tag, linux.EIO)
	}
	defer s.share.release()
	if m.typ == tVersion {
		return s.version(m, room)
	}
	s.mu.Lock()
	sess := s.sess
	s.mu.Unlock()
	if sess == nil || sess.msize.Load() == 0 {
		return rlerror(m.tag, linux.EINVAL) // no session: Tversion first
	}
	if len(m.b) > int(sess.msize.Load()) {
		return rlerror(m.tag, linux.EMSGSIZE)
	}
	return sess.serve(m, room)
}

// version is Tversion: it starts a new session (9P: a Tversion aborts
// everything before it) with msize cut to [MinMsize, MaxMsize].
func (s *Server) version(m *msg, room int) []byte {
	msize := m.u32(0)
	if msize < MinMsize {
		return rlerror(m.tag, linux.EINVAL)
	}
	// Kiln speaks plain 9P2000.L to the guest, as Linux does; the
	// library's extensions (9P2000.L.Google.N) are kiln's own business.
	version := m.str(1)
	if version == "9P2000.L" || strings.HasPrefix(version, "9P2000.L.") {
		version = "9P2000.L"
	}
	b := newMsg(tVersion, m.tag, 4+2+len(version))
	le.PutUint32(b[hdrLen:], min(msize, MaxMsize))
	le.PutUint16(b[hdrLen+4:], uint16(len(version)))
	copy(b[hdrLen+6:], version)
	if !s.share.hold() { // for the session, as Handle holds it for the request
		return rlerror(m.tag, linux.EIO)
	}
	sess := newSession(s.share)
	s.mu.Lock()
	old := s.sess
	s.sess = sess
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	r := sess.roundTrip(b, m.tag, room)
	le.PutUint16(r[5:], m.tag)
	// Rversion: msize[4] version[s]; "unknown" if the version is not one
	// the library speaks, which leaves the session unusable.
	if r[4] == tVersion+1 && len(r) >= hdrLen+6 {
		got, vlen := le.Uint32(r[hdrLen:]), int(le.Uint16(r[hdrLen+4:]))
		if len(r) >= hdrLen+6+vlen && string(r[hdrLen+6:hdrLen+6+vlen]) != "unknown" && got >= MinMsize {
			sess.msize.Store(min(got, MaxMsize))
		}
	}
	return r
}

// InSession reports whether a guest has started a 9P session (a
// Tversion, which the guest sends when it mounts the share). A snapshot
// can only hold a server without one: a session's fids are open files.
func (s *Server) InSession() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sess != nil
}

// Reset ends the current session, as a device reset does: the guest's
// fids are gone (their files close once no request uses them) and the
// next message must be a Tversion.
func (s *Server) Reset() {
	s.mu.Lock()
	old := s.sess
	s.sess = nil
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
}
