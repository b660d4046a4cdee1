package virtio

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// P9 is a 9P transport device (virtio-9p, device type 9), which carries a
// file server's messages to the guest's v9fs file system. The device is
// not in the VIRTIO 1.2 spec's body; Linux's net/9p/trans_virtio.c defines
// it: feature VIRTIO_9P_MOUNT_TAG, a configuration space of le16 tag_len
// and the tag (the name the guest mounts: mount -t 9p -o trans=virtio
// TAG /mnt), and one request queue. Each chain is one request: the
// T-message in its readable buffers, room for the R-message in its
// writable ones.
//
// The 9P itself is the server's (P9Server; devices/share serves a host
// directory). The device's part is the queue: it copies each request out
// of guest memory, lets the server answer it in a goroutine of its own,
// and copies the reply in. Replies go back in the order they are ready,
// not the order of the requests: the Linux client sends many requests at
// once, and a slow one (an fsync, a large read) must not hold up the rest.
// At most 32 requests (p9MaxInFlight) run at once, counting those a reset
// left still running on the host; the guest's further chains wait in the
// queue. That bounds the goroutines and memory a guest can make kiln
// spend: each request holds its message (at most p9MaxRequest, 1 MiB,
// copied from the chain) and its reply (at most msize, 512 KiB with
// devices/share), so about 48 MiB in all at worst.
//
// The machine builds one from a share:
//
//	sh, err := share.New(hostDir, readOnly)
//	dev, err := virtio.NewP9(tag, share.NewServer(sh))
type P9 struct {
	tag     string
	server  P9Server
	run     *p9Run // the current activation; nil when reset
	workers Workers
	// slots holds a token for each request in flight, whichever
	// activation took it: a request a reset abandoned keeps its slot
	// until the server returns, so resetting in a loop cannot start more
	// than p9MaxInFlight requests at once.
	slots chan struct{}
	// session is a snapshot's 9P session, started again when the
	// restored device is activated.
	session json.RawMessage
}

// P9Server answers 9P messages for a P9 device (*share.Server is one). It
// must be safe for concurrent use: the device calls Handle from up to
// p9MaxInFlight goroutines.
type P9Server interface {
	// Handle answers the T-message at the start of req with an R-message
	// of at most room bytes (room is at least 11, an Rlerror's size). It
	// may block.
	Handle(req []byte, room int) []byte
	// Reset ends the 9P session: the driver reset the device. Requests
	// still running may finish, but their replies go nowhere.
	Reset()
	// InSession reports whether the guest has a session: it mounted the
	// share.
	InSession() bool
	// SaveSession returns the session, for a snapshot: nil if there is
	// none. No request is in flight when it is called.
	SaveSession() (json.RawMessage, error)
	// RestoreSession starts a session SaveSession returned, before the
	// restored guest sends anything.
	RestoreSession(json.RawMessage) error
}

// virtio-9p constants.
const (
	p9FMountTag   = 1 << 0 // VIRTIO_9P_MOUNT_TAG: the tag is in the config space
	p9QueueSize   = 128    // Linux's VIRTQUEUE_NUM for 9P
	p9MaxInFlight = 32     // requests the server handles at once
	p9MaxTagLen   = 255
	// p9MinReply is the smallest reply the room must take: an Rlerror
	// (size[4] type[1] tag[2] ecode[4]). A chain with less is malformed.
	p9MinReply = 11
	p9HdrLen   = 7 // size[4] type[1] tag[2]
	// p9MaxRequest bounds the bytes copied out of one chain: above any
	// msize kiln negotiates (Linux's virtio transport stops at 512000).
	p9MaxRequest = 1 << 20
)

// ErrBadMountTag says a 9P mount tag cannot be used.
var ErrBadMountTag = errors.New("bad 9P mount tag")

// NewP9 makes a device that serves srv under the mount tag tag.
func NewP9(tag string, srv P9Server) (*P9, error) {
	if tag == "" || len(tag) > p9MaxTagLen || strings.ContainsRune(tag, 0) {
		return nil, fmt.Errorf("%w %q: want 1 to %d bytes, no NUL", ErrBadMountTag, tag, p9MaxTagLen)
	}
	return &P9{tag: tag, server: srv, slots: make(chan struct{}, p9MaxInFlight)}, nil
}

// Tag is the mount tag the guest sees.
func (p *P9) Tag() string { return p.tag }

func (p *P9) Type() DeviceType                 { return TypeP9 }
func (p *P9) Features() uint64                 { return CommonFeatures | p9FMountTag }
func (p *P9) QueueMaxSizes() []uint16          { return []uint16{p9QueueSize} }
func (p *P9) WriteConfig(off uint64, d []byte) {} // read-only

// ReadConfig reads struct virtio_9p_config: le16 tag_len, then the tag
// (not NUL-terminated).
func (p *P9) ReadConfig(off uint64, d []byte) {
	c := make([]byte, 2+len(p.tag))
	le.PutUint16(c, uint16(len(p.tag)))
	copy(c[2:], p.tag)
	readConfig(c, off, d)
}

// Activate starts taking requests from the queue; after Pause, it goes on
// with the requests the pause held.
func (p *P9) Activate(a *Activation) error {
	q, kick := a.Queues[0], a.Kicks[0]
	if q.Size == 0 || kick == nil {
		return nil // the driver did not set the queue up
	}
	if r := p.run; r != nil && r.paused && r.q == q {
		r.resume(a)
		p.workers.Go(r.pump)
		return nil
	}
	if p.run != nil {
		p.stop()
	}
	if sess := p.session; sess != nil {
		// Restored: the guest's fids are made again before its first
		// request is taken, and it hears of the replies the snapshot
		// put in the used ring (SaveState) by an interrupt.
		p.session = nil
		if err := p.server.RestoreSession(sess); err != nil {
			return fmt.Errorf("9P share %q: %w", p.tag, err)
		}
		defer a.Interrupt()
	}
	r := &p9Run{server: p.server, a: a, q: q, kick: kick, slots: p.slots}
	p.run = r
	p.workers.Go(r.pump)
	return nil
}

// Reset stops taking requests and ends the server's session. Requests the
// server is still working on finish in their own time; their replies are
// dropped, so nothing touches guest memory once Reset returns.
func (p *P9) Reset() {
	if p.run != nil {
		p.stop()
	}
	p.server.Reset()
}

// Pause implements Pauser: the pump stops and the session stays (a
// snapshot saves it, SaveState). Requests the server is still
// working on go on; their replies are held, out of guest memory, until
// the device is activated again (Transport.Resume) or reset.
func (p *P9) Pause() {
	r := p.run
	if r == nil || r.paused {
		return
	}
	p.workers.Stop()
	r.mu.Lock()
	r.paused = true
	r.mu.Unlock()
}

// stop ends the pump, then marks the run dead so that no reply still being
// made reaches guest memory.
func (p *P9) stop() {
	p.workers.Stop()
	p.run.mu.Lock()
	p.run.dead = true
	p.run.mu.Unlock()
	p.run = nil
}

// p9State is what a snapshot keeps of a 9P device: its tag, which the
// guest's driver read, and which the restored device must have; and the
// guest's 9P session if it mounted the share (devices/share/snapshot.go:
// the fids, made again in the restored VM by the requests that made
// them).
type p9State struct {
	Tag     string          `json:"tag"`
	Session json.RawMessage `json:"session,omitempty"`
}

// p9DrainTimeout bounds how long a snapshot waits for the requests the
// host is still working on. One blocked longer (on a FIFO the guest
// opened, a lock) would leave a fid half made: the snapshot is refused.
const p9DrainTimeout = 5 * time.Second

// SaveState implements Snapshotter. The device is paused: its pump takes
// no new request. A mounted share's session is saved once the requests
// in flight are answered; their replies, held by the pause, go into the
// guest's used ring now, so that the snapshot's memory holds them.
func (p *P9) SaveState() (json.RawMessage, error) {
	s := p9State{Tag: p.tag}
	if p.server.InSession() {
		if err := p.drain(); err != nil {
			return nil, err
		}
		sess, err := p.server.SaveSession()
		if err != nil {
			return nil, fmt.Errorf("9P share %q: %w", p.tag, err)
		}
		s.Session = sess
	}
	return json.Marshal(s)
}

// drain waits until no request is in flight, then puts the held replies
// in the used ring.
func (p *P9) drain() error {
	deadline := time.Now().Add(p9DrainTimeout)
	for len(p.slots) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("9P share %q: %d requests of the guest still running on the host after %v", p.tag, len(p.slots), p9DrainTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	if r := p.run; r != nil {
		r.mu.Lock()
		for _, h := range r.held {
			r.reply(h.c, h.resp)
		}
		r.held = nil
		r.mu.Unlock()
	}
	return nil
}

// RestoreState implements Snapshotter: the tag must be the one the guest
// knows. A saved session starts when the device is activated.
func (p *P9) RestoreState(data json.RawMessage) error {
	var s p9State
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("9P state: %w", err)
	}
	if s.Tag != p.tag {
		return fmt.Errorf("9P device with tag %q, the snapshot's had %q", p.tag, s.Tag)
	}
	p.session = s.Session
	return nil
}

// p9Run is one activation: the queue, and the requests in flight.
type p9Run struct {
	server P9Server
	a      *Activation
	q      *Queue
	kick   <-chan struct{}
	slots  chan struct{} // one token per request in flight (P9.slots)

	mu     sync.Mutex  // the queue's rings, a, and the state below
	dead   bool        // reset: replies are dropped
	paused bool        // paused: replies are held
	held   []p9Replied // replies that came while paused
}

// p9Replied is a reply made while the device was paused, and its chain.
type p9Replied struct {
	c    *Chain
	resp []byte
}

// resume goes on after a pause, in activation a: the held replies go to
// the guest, and the pump, started next, takes new requests.
func (r *p9Run) resume(a *Activation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.a, r.paused = a, false
	for _, h := range r.held {
		r.reply(h.c, h.resp)
	}
	r.held = nil
	if r.q.NeedInterrupt() {
		r.a.Interrupt()
	}
}

// pump takes chains while a slot is free and starts a goroutine for each,
// until stop is closed. The request goroutines are not among the device's
// Workers: a request may block on the host (a FIFO, a lock) for as long as
// the guest waits for it, and a reset must not; its reply is dropped.
func (r *p9Run) pump(stop <-chan struct{}) {
	for {
		select {
		case r.slots <- struct{}{}:
		case <-stop:
			return
		}
		c, err := r.next(stop)
		if err == nil && c != nil && c.WritableLen() < p9MinReply {
			err = fmt.Errorf("%w: 9P request with %d bytes of room, less than an Rlerror", ErrBadChain, c.WritableLen())
		}
		if err != nil || c == nil {
			<-r.slots // the slot taken for a request that never came
			if err != nil {
				r.a.Fail(err)
			}
			return // malformed, or stopped
		}
		go r.serve(c, p9Request(c.Readable), c.WritableLen())
	}
}

// next waits for the driver's next chain; nil once stopped.
func (r *p9Run) next(stop <-chan struct{}) (*Chain, error) {
	for {
		r.mu.Lock()
		c, err := r.q.Pop()
		more := false
		if err == nil && c == nil {
			more, err = r.q.ArmNotify()
		}
		r.mu.Unlock()
		if err != nil || c != nil {
			return c, err
		}
		if more {
			continue
		}
		select {
		case <-r.kick:
		case <-stop:
			return nil, nil
		}
	}
}

// p9Request copies the T-message out of guest memory: as many bytes as
// its size field says, if that covers a header and the buffers hold it,
// and never more than p9MaxRequest. The server finds anything wrong with
// it (and can still answer with its tag).
func p9Request(bufs [][]byte) []byte {
	n := min(total(bufs), p9MaxRequest)
	if hdr, _ := splitFront(bufs, 4); hdr != nil {
		if size := int(le.Uint32(hdr)); size >= p9HdrLen && size < n {
			n = size
		}
	}
	req := make([]byte, 0, n)
	for _, b := range bufs {
		req = append(req, b[:min(len(b), n-len(req))]...)
	}
	return req
}

// serve answers one request and returns the chain.
func (r *p9Run) serve(c *Chain, req []byte, room int) {
	defer func() { <-r.slots }()
	resp := r.server.Handle(req, room)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.dead:
		return
	case r.paused:
		r.held = append(r.held, p9Replied{c, resp})
		return
	}
	r.reply(c, resp)
	if r.q.NeedInterrupt() {
		r.a.Interrupt()
	}
}

// reply copies resp into c's writable buffers and returns the chain; the
// caller holds r.mu.
func (r *p9Run) reply(c *Chain, resp []byte) {
	n := 0
	for _, b := range c.Writable {
		if n == len(resp) {
			break
		}
		n += copy(b, resp[n:])
	}
	r.q.Push(c.Head, uint32(n))
}
