package share

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
)

// session is one 9P session, from a Tversion to the next (or to a device
// reset): a connection of the library's server, fed through an in-memory
// pipe. The library reads T-messages from the session (Read) and writes
// R-messages to it (Write); roundTrip puts one message in and waits for
// the reply that carries its tag.
//
// Tags are kiln's: each message in flight gets one no other has, and the
// caller puts the guest's back. Fids, though, are the guest's, and the
// session keeps what kiln needs to know about each (requests.go).
type session struct {
	share *Share
	msize atomic.Uint32 // negotiated by this session's Tversion; 0 before

	in        chan []byte   // to the library's reader
	done      chan struct{} // closed when the session ends
	closeOnce sync.Once

	rmu sync.Mutex // the reader's state
	cur []byte     // what is left of the message being read

	mu      sync.Mutex
	calls   map[uint16]*call // in flight, by kiln's tag
	nextTag uint16
	ended   bool // the library's loop is gone: no reply will come
	fids    map[uint32]*fidState
	xattrs  int   // fids kiln serves xattrs on (local.go)
	pending int64 // bytes Txattrcreates may make the library buffer
	strays  int   // replies that matched no call (a bug; tests check it)

	wmu sync.Mutex // the writer's state: the reply being assembled
	w   struct {
		hdr  [hdrLen]byte
		have int   // header bytes so far
		left int   // body bytes still to come
		call *call // nil: discard the body
	}
}

// call is one message in flight.
type call struct {
	guestTag uint16
	room     int    // the largest reply the chain can take
	resp     []byte // the reply, with kiln's tag
	tooBig   bool
	done     chan struct{}
}

// maxCalls bounds the messages one session has in flight. The device
// bounds them far lower; this only guards the tag space.
const maxCalls = 4096

// newSession starts the library's connection loop on a new pipe. The
// caller holds the share (Share.hold) for the session, which releases it
// when the library's loop, and with it every request it was handling and
// every file of the session, is done.
func newSession(sh *Share) *session {
	s := &session{share: sh, in: make(chan []byte), done: make(chan struct{}),
		calls: map[uint16]*call{}, fids: map[uint32]*fidState{}}
	srv := p9.NewServer(sh)
	go func() {
		defer sh.release()
		srv.Handle(s, s)
		s.finish()
	}()
	return s
}

// close ends the session: the library's reader sees the end of the pipe,
// finishes the requests it has, closes the session's files and returns.
// close does not wait for that: a request blocked on the host must not
// block the device's reset.
func (s *session) close() { s.closeOnce.Do(func() { close(s.done) }) }

// finish runs when the library's loop has returned: whatever is still in
// flight will get no reply from it, so it gets EIO.
func (s *session) finish() {
	s.close()
	s.mu.Lock()
	s.ended = true
	calls := s.calls
	s.calls = map[uint16]*call{}
	s.mu.Unlock()
	for tag, c := range calls {
		c.resp = rlerror(tag, linux.EIO)
		close(c.done)
	}
}

// roundTrip sends the T-message m (its tag is overwritten) and returns the
// reply, at most room bytes, still carrying kiln's tag.
func (s *session) roundTrip(m []byte, guestTag uint16, room int) []byte {
	c := &call{guestTag: guestTag, room: room, done: make(chan struct{})}
	s.mu.Lock()
	if s.ended || len(s.calls) >= maxCalls {
		s.mu.Unlock()
		if s.ended {
			return rlerror(guestTag, linux.EIO)
		}
		return rlerror(guestTag, linux.EAGAIN)
	}
	for {
		s.nextTag++
		if _, busy := s.calls[s.nextTag]; !busy && s.nextTag != noTag {
			break
		}
	}
	tag := s.nextTag
	s.calls[tag] = c
	s.mu.Unlock()

	le.PutUint16(m[5:], tag)
	select {
	case s.in <- m:
	case <-s.done:
		s.mu.Lock()
		if s.calls[tag] == c {
			delete(s.calls, tag)
			s.mu.Unlock()
			return rlerror(tag, linux.EIO)
		}
		s.mu.Unlock() // finish took it: its reply is coming
	}
	<-c.done
	return c.resp
}

// kilnTag finds the tag kiln gave the guest's request guestTag, for Tflush.
func (s *session) kilnTag(guestTag uint16) (uint16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tag, c := range s.calls {
		if c.guestTag == guestTag {
			return tag, true
		}
	}
	return 0, false
}

// endGrace is how long the end of a session waits before the library
// sees it. hugelgupf/p9 v0.3.0 starts a goroutine to receive the next
// message before that goroutine counts itself among the requests in
// flight (fixed upstream in hugelgupf/p9#105, not yet released): if the
// connection ended before it ran, the server's teardown could race with
// it (sync.WaitGroup misuse, a panic at worst). The goroutine is runnable
// the moment it starts, so a short wait lets it count itself first.
const endGrace = 10 * time.Millisecond

// Read gives the library's reader the next T-message, a piece at a time.
// The library reads from one goroutine at a time.
func (s *session) Read(p []byte) (int, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if len(s.cur) == 0 {
		select {
		case s.cur = <-s.in:
		case <-s.done:
			time.Sleep(endGrace)
			return 0, io.EOF
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// Write takes the library's R-messages, which arrive one after the other
// (the library sends under a lock), each in one or more writes. A reply
// is matched to its call by tag as soon as its header is in; one too big
// for the call's room is dropped and answered with ERANGE.
func (s *session) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	w := &s.w
	n := len(p)
	for {
		if w.have < hdrLen {
			k := copy(w.hdr[w.have:], p)
			w.have += k
			p = p[k:]
			if w.have < hdrLen {
				return n, nil
			}
			size, tag := int(le.Uint32(w.hdr[:])), le.Uint16(w.hdr[5:])
			w.left = max(size-hdrLen, 0)
			s.mu.Lock()
			w.call = s.calls[tag]
			delete(s.calls, tag)
			if w.call == nil {
				s.strays++
			}
			s.mu.Unlock()
			if c := w.call; c != nil {
				if size < hdrLen || size > c.room {
					c.tooBig = true
				} else {
					c.resp = append(make([]byte, 0, size), w.hdr[:]...)
				}
			}
		}
		k := min(len(p), w.left)
		if c := w.call; c != nil && !c.tooBig {
			c.resp = append(c.resp, p[:k]...)
		}
		p, w.left = p[k:], w.left-k
		if w.left > 0 {
			return n, nil
		}
		if c := w.call; c != nil {
			if c.tooBig {
				c.resp = rlerror(le.Uint16(w.hdr[5:]), linux.ERANGE)
			}
			close(c.done)
		}
		w.have, w.call = 0, nil
		if len(p) == 0 {
			return n, nil
		}
	}
}

// Close is the pipe's close, for the library: the session ends by close.
func (s *session) Close() error { return nil }
