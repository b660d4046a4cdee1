package virtio

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Vsock is a virtio socket device (5.10): stream connections between the
// guest and the host addressed by (CID, port), with no network at all. The
// host side is "hybrid", as in Firecracker: a unix socket at Path.
//
//   - The guest connects to host port P: kiln connects to the unix socket
//     Path_P (a host program listens there).
//   - A host program connects to the guest: it connects to Path, writes
//     "CONNECT P\n", and once the guest accepted, reads "OK <host port>\n";
//     the stream is then the connection.
//
// Every packet carries a 44-byte header: addresses, operation (REQUEST,
// RESPONSE, RW, SHUTDOWN, RST, CREDIT_UPDATE, CREDIT_REQUEST), and the
// sender's receive buffer size and how much of it it has consumed. A side
// may send at most buf_alloc - (sent - peer's fwd_cnt) bytes: credit-based
// flow control, so neither side buffers without bound.
type Vsock struct {
	cid  uint64
	path string
	ln   *net.UnixListener

	mu       sync.Mutex
	conns    map[connKey]*vconn
	nextPort uint32
	rx       chan []byte     // packets (header and payload) for the guest
	stop     <-chan struct{} // closed when the device stops; nil before Activate
	workers  Workers

	// resetPending: restored from a snapshot, the guest must hear that
	// every connection it had is gone (VIRTIO_VSOCK_EVENT_TRANSPORT_RESET).
	resetPending bool
}

// vsock constants (5.10.6).
const (
	vsockHdrLen   = 44
	vsockHostCID  = 2
	vsockTypeStrm = 1

	vsockOpRequest       = 1
	vsockOpResponse      = 2
	vsockOpRST           = 3
	vsockOpShutdown      = 4
	vsockOpRW            = 5
	vsockOpCreditUpdate  = 6
	vsockOpCreditRequest = 7

	vsockShutdownRecv = 1
	vsockShutdownSend = 2

	vsockBufAlloc  = 256 << 10 // what kiln buffers per connection
	vsockMaxRead   = 4096      // payload per packet to the guest
	vsockQueueSize = 256
	vsockFirstPort = 1 << 30 // local ports for host-initiated connections

	// vsockMaxConns bounds the connections of one device, guest- and
	// host-initiated together: each holds a host socket and a goroutine
	// (forward, with a vsockMaxRead buffer). A guest request past it is
	// answered with RST before kiln dials anything; a host program's
	// connection past it is closed.
	vsockMaxConns = 1024
	// vsockMaxPayload bounds one packet's payload from the guest: Linux
	// sends at most 64 KiB (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). A data packet
	// that says more resets its connection; kiln never copies a packet,
	// it writes the guest's buffers to the host socket as they are.
	vsockMaxPayload = 64 << 10
	// vsockRxPackets bounds the packets waiting for the guest's receive
	// buffers (each at most vsockHdrLen+vsockMaxRead bytes); senders wait
	// when it is full, which is the guest's back pressure on itself.
	vsockRxPackets = 256

	vsockEventQueue          = 2
	vsockEventTransportReset = 0 // struct virtio_vsock_event's id
)

// connKey names a connection by its local (host) and peer (guest) ports.
type connKey struct{ local, peer uint32 }

// vconn is one connection.
type vconn struct {
	key       connKey
	c         net.Conn
	connected bool // the handshake is done
	hostInit  bool // a host program connected through Path

	// Flow control: what the guest told us, and what we sent and consumed.
	peerBufAlloc, peerFwdCnt uint32
	txCnt                    uint32 // payload bytes sent to the guest
	fwdCnt                   uint32 // payload bytes from the guest written out
	fwdReported              uint32 // fwdCnt when the guest last heard it

	// Each direction ends on its own (a half-close): hostDone when the
	// host side reached end of stream, guestDone when the guest said it
	// sends no more. With both, the connection is over.
	hostDone, guestDone bool
	creditCh            chan struct{}
	// gone is closed when the connection is dropped: forward, waiting
	// for credit the guest will now never give, returns.
	gone    chan struct{}
	dropped bool
}

// newConn makes a connection record.
func newConn(key connKey, c net.Conn) *vconn {
	return &vconn{key: key, c: c, creditCh: make(chan struct{}, 1), gone: make(chan struct{})}
}

func (v *vconn) credit() uint32 { return v.peerBufAlloc - (v.txCnt - v.peerFwdCnt) }

// ErrVsock says the vsock host socket cannot be set up.
var ErrVsock = errors.New("vsock unavailable")

// NewVsock makes a device with guest CID cid, listening for host programs
// on the unix socket path.
func NewVsock(cid uint64, path string) (*Vsock, error) {
	if cid <= vsockHostCID || cid >= 0xffffffff {
		return nil, fmt.Errorf("%w: guest CID %d (want 3 to 4294967294)", ErrVsock, cid)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%w: %v (remove a stale socket file?)", ErrVsock, err)
	}
	return &Vsock{cid: cid, path: path, ln: ln, conns: map[connKey]*vconn{}, nextPort: vsockFirstPort}, nil
}

// Close stops listening and removes the socket file.
func (s *Vsock) Close() error { return s.ln.Close() }

func (s *Vsock) Type() DeviceType { return TypeVsock }
func (s *Vsock) Features() uint64 { return CommonFeatures }
func (s *Vsock) QueueMaxSizes() []uint16 {
	return []uint16{vsockQueueSize, vsockQueueSize, vsockQueueSize}
}

// ReadConfig reads struct virtio_vsock_config: the guest's CID.
func (s *Vsock) ReadConfig(off uint64, d []byte) {
	c := make([]byte, 8)
	le.PutUint64(c, s.cid)
	readConfig(c, off, d)
}

func (s *Vsock) WriteConfig(off uint64, d []byte) {}

// Activate starts the transmit queue worker, the receive loop and the
// host listener.
func (s *Vsock) Activate(a *Activation) error {
	s.stop = s.workers.Stopping()
	s.ln.SetDeadline(time.Time{}) // a reset's wake-up, undone
	s.rx = make(chan []byte, vsockRxPackets)
	s.workers.Start(a, 1, s.transmit)
	if q := a.Queues[0]; q.Size > 0 {
		s.spawn(func() { s.receive(a, q, a.Kicks[0]) })
	}
	s.spawn(s.accept)
	if s.resetPending {
		s.resetPending = false
		if q := a.Queues[vsockEventQueue]; q.Size > 0 {
			s.spawn(func() { s.transportReset(a, q, a.Kicks[vsockEventQueue]) })
		}
	}
	return nil
}

// SaveState implements Snapshotter. Connections are not saved: they live
// in host sockets that a snapshot cannot hold, and would be shared by
// every VM restored from it.
func (s *Vsock) SaveState() (json.RawMessage, error) { return json.RawMessage(`{}`), nil }

// RestoreState implements Snapshotter: once the device runs again it
// tells the guest that its connections are gone (5.10.6.7 "Device
// Events"), as after a live migration. The guest's driver then resets
// every socket and reads the CID anew, which may differ from the one the
// snapshot was taken with.
func (s *Vsock) RestoreState(json.RawMessage) error {
	s.resetPending = true
	return nil
}

// transportReset puts a TRANSPORT_RESET event in the first buffer the
// driver gives the event queue.
func (s *Vsock) transportReset(a *Activation, q *Queue, kick <-chan struct{}) {
	c, err := next(q, kick, s.stop)
	if err == nil && c != nil && (c.WritableLen() < 4 || len(c.Writable[0]) < 4) {
		err = fmt.Errorf("%w: vsock event buffer of %d bytes", ErrBadChain, c.WritableLen())
	}
	if err != nil {
		a.Fail(err)
		return
	}
	if c == nil {
		return // stopped
	}
	le.PutUint32(c.Writable[0], vsockEventTransportReset)
	give(q, a, c.Head, 4)
}

// spawn runs f as one of the device's workers; f watches s.stop.
func (s *Vsock) spawn(f func()) {
	s.workers.Go(func(<-chan struct{}) { f() })
}

// Pause implements Pauser. The connections live in host sockets, which
// do not pause with the VM, so a pause ends them as a reset does; once the
// device runs again the guest hears that they are gone, as after a
// restore (RestoreState).
func (s *Vsock) Pause() {
	s.Reset()
	s.resetPending = true
}

// Reset closes every connection and stops the device's goroutines.
func (s *Vsock) Reset() {
	s.resetPending = false
	if s.stop == nil {
		return // never activated
	}
	defer func() { s.stop = nil }()
	s.workers.Stop(func() {
		s.mu.Lock()
		for k, c := range s.conns {
			c.c.Close()
			delete(s.conns, k)
		}
		s.mu.Unlock()
		// Wake accept: a deadline in the past ends its wait, with no
		// system call (a reset runs on a vCPU's thread, whose seccomp
		// filter has no sockets; vmm/seccomp).
		s.ln.SetDeadline(time.Unix(1, 0))
	})
}

// packet builds a header (and payload) from the host to the guest. It
// reads and records v's flow-control counters under the device lock.
func (s *Vsock) packet(v *vconn, op uint16, flags uint32, payload []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := make([]byte, vsockHdrLen+len(payload))
	le.PutUint64(p[0:], vsockHostCID)
	le.PutUint64(p[8:], s.cid)
	le.PutUint32(p[16:], v.key.local)
	le.PutUint32(p[20:], v.key.peer)
	le.PutUint32(p[24:], uint32(len(payload)))
	le.PutUint16(p[28:], vsockTypeStrm)
	le.PutUint16(p[30:], op)
	le.PutUint32(p[32:], flags)
	le.PutUint32(p[36:], vsockBufAlloc)
	le.PutUint32(p[40:], v.fwdCnt)
	v.fwdReported = v.fwdCnt
	copy(p[vsockHdrLen:], payload)
	return p
}

// send queues a packet for the guest; it gives up when the device stops.
func (s *Vsock) send(p []byte) {
	select {
	case s.rx <- p:
	case <-s.stop:
	}
}

// rst answers a packet we cannot take with a reset.
func (s *Vsock) rst(local, peer uint32) {
	s.send(s.packet(&vconn{key: connKey{local, peer}}, vsockOpRST, 0, nil))
}

// receive puts queued packets into the guest's receive buffers.
func (s *Vsock) receive(a *Activation, q *Queue, kick <-chan struct{}) {
	for {
		var p []byte
		select {
		case p = <-s.rx:
		case <-s.stop:
			return
		}
		c, err := next(q, kick, s.stop)
		if err == nil && c != nil && c.WritableLen() < len(p) {
			err = fmt.Errorf("%w: vsock receive buffer of %d bytes for a %d-byte packet", ErrBadChain, c.WritableLen(), len(p))
		}
		if err != nil {
			a.Fail(err)
			return
		}
		if c == nil {
			return // stopped
		}
		n := 0
		for _, b := range c.Writable {
			n += copy(b, p[n:])
		}
		give(q, a, c.Head, uint32(len(p)))
	}
}

// transmit handles one packet from the guest.
func (s *Vsock) transmit(c *Chain) (uint32, error) {
	hdr, payload := splitFront(c.Readable, vsockHdrLen)
	if hdr == nil {
		return 0, fmt.Errorf("%w: vsock packet without a header", ErrBadChain)
	}
	srcPort, dstPort := le.Uint32(hdr[16:]), le.Uint32(hdr[20:])
	length, op := le.Uint32(hdr[24:]), le.Uint16(hdr[30:])
	flags := le.Uint32(hdr[32:])
	if le.Uint64(hdr[8:]) != vsockHostCID || le.Uint16(hdr[28:]) != vsockTypeStrm {
		s.rst(dstPort, srcPort)
		return 0, nil
	}
	if int(length) > total(payload) {
		return 0, fmt.Errorf("%w: vsock packet says %d bytes, carries %d", ErrBadChain, length, total(payload))
	}
	key := connKey{local: dstPort, peer: srcPort}
	s.mu.Lock()
	v := s.conns[key]
	if v != nil {
		v.peerBufAlloc, v.peerFwdCnt = le.Uint32(hdr[36:]), le.Uint32(hdr[40:])
		select {
		case v.creditCh <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()

	switch {
	case op == vsockOpRequest && v == nil:
		s.connectHost(key, le.Uint32(hdr[36:]), le.Uint32(hdr[40:]))
	case v == nil:
		if op != vsockOpRST {
			s.rst(dstPort, srcPort)
		}
	case op == vsockOpResponse && v.hostInit && !v.connected:
		v.connected = true
		if _, err := fmt.Fprintf(v.c, "OK %d\n", key.local); err != nil {
			s.drop(v, true)
			break
		}
		s.spawn(func() { s.forward(v) })
	case op == vsockOpRW && length > vsockMaxPayload:
		s.drop(v, true)
	case op == vsockOpRW:
		data := net.Buffers(cut(payload, int(length)))
		if _, err := data.WriteTo(v.c); err != nil {
			s.drop(v, true)
			break
		}
		s.mu.Lock()
		v.fwdCnt += length
		update := v.fwdCnt-v.fwdReported >= vsockBufAlloc/2
		s.mu.Unlock()
		if update {
			// Tell the guest its buffer space here came back before it
			// runs out of credit and waits.
			s.send(s.packet(v, vsockOpCreditUpdate, 0, nil))
		}
	case op == vsockOpShutdown:
		if flags&vsockShutdownSend != 0 {
			if cw, ok := v.c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}
		s.mu.Lock()
		v.guestDone = v.guestDone || flags&vsockShutdownSend != 0
		over := flags == vsockShutdownRecv|vsockShutdownSend || v.guestDone && v.hostDone
		s.mu.Unlock()
		if over {
			s.drop(v, true)
		}
	case op == vsockOpRST:
		s.drop(v, false)
	case op == vsockOpCreditRequest:
		s.send(s.packet(v, vsockOpCreditUpdate, 0, nil))
	}
	return 0, nil
}

// connectHost handles the guest connecting to host port key.local: kiln
// connects to Path_port.
func (s *Vsock) connectHost(key connKey, bufAlloc, fwdCnt uint32) {
	s.mu.Lock()
	full := len(s.conns) >= vsockMaxConns
	s.mu.Unlock()
	if full {
		s.rst(key.local, key.peer)
		return
	}
	c, err := net.DialTimeout("unix", s.path+"_"+strconv.Itoa(int(key.local)), time.Second)
	if err != nil {
		s.rst(key.local, key.peer)
		return
	}
	v := newConn(key, c)
	v.connected, v.peerBufAlloc, v.peerFwdCnt = true, bufAlloc, fwdCnt
	s.mu.Lock()
	added := s.addConnLocked(v)
	s.mu.Unlock()
	if !added {
		s.rst(key.local, key.peer)
		return
	}
	s.send(s.packet(v, vsockOpResponse, 0, nil))
	s.spawn(func() { s.forward(v) })
}

// accept takes host programs connecting through Path.
func (s *Vsock) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		select {
		case <-s.stop:
			c.Close()
			return
		default:
		}
		s.spawn(func() { s.hostConnect(c) })
	}
}

// hostConnect reads "CONNECT <port>\n" and asks the guest to accept.
func (s *Vsock) hostConnect(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
	c.SetReadDeadline(time.Time{})
	port, perr := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(line), "CONNECT "), 10, 32)
	if err != nil || perr != nil || !strings.HasPrefix(line, "CONNECT ") {
		c.Close()
		return
	}
	s.mu.Lock()
	local := s.nextPort
	s.nextPort++
	v := newConn(connKey{local: local, peer: uint32(port)}, c)
	v.hostInit = true
	added := s.addConnLocked(v)
	s.mu.Unlock()
	if added {
		s.send(s.packet(v, vsockOpRequest, 0, nil))
	}
}

// addConnLocked records a new connection, unless the device is stopping
// or has vsockMaxConns already; otherwise it closes the connection's
// socket. Reset closes the connections it finds once, so one added after
// that would stay open, and its forward goroutine would keep Reset waiting
// forever. Reset closes them under s.mu, as the caller holds it here.
func (s *Vsock) addConnLocked(v *vconn) bool {
	select {
	case <-s.stop:
		v.c.Close()
		return false
	default:
	}
	if len(s.conns) >= vsockMaxConns {
		v.c.Close()
		return false
	}
	s.conns[v.key] = v
	return true
}

// forward copies what the host side writes to the guest, within the
// guest's credit; at the host's end of stream it shuts the connection down.
func (s *Vsock) forward(v *vconn) {
	buf := make([]byte, vsockMaxRead)
	for {
		s.mu.Lock()
		credit := v.credit()
		s.mu.Unlock()
		if credit == 0 {
			select {
			case <-v.creditCh:
				continue
			case <-v.gone:
				return
			case <-s.stop:
				return
			}
		}
		n, err := v.c.Read(buf[:min(int(credit), len(buf))])
		if n > 0 {
			s.mu.Lock()
			v.txCnt += uint32(n)
			s.mu.Unlock()
			s.send(s.packet(v, vsockOpRW, 0, buf[:n]))
		}
		if err != nil {
			// The host side sends no more; it may still read (a
			// half-close), so the guest hears only "no more data".
			s.mu.Lock()
			live := s.conns[v.key] == v
			v.hostDone = true
			over := v.guestDone
			s.mu.Unlock()
			if !live {
				return
			}
			s.send(s.packet(v, vsockOpShutdown, vsockShutdownSend, nil))
			if over {
				s.drop(v, true)
			}
			return
		}
	}
}

// drop forgets a connection, closing the host side, and resets the guest
// side if tell.
func (s *Vsock) drop(v *vconn, tell bool) {
	s.mu.Lock()
	if s.conns[v.key] == v {
		delete(s.conns, v.key)
	}
	if !v.dropped {
		v.dropped = true
		close(v.gone)
	}
	s.mu.Unlock()
	v.c.Close()
	if tell {
		s.send(s.packet(v, vsockOpRST, 0, nil))
	}
}
