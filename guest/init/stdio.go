package main

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The container's stdio, relayed by init. The process's stdin, stdout and
// stderr are pipes (or, with a terminal, the slave of a pseudo-terminal
// whose master init holds); init copies between them and vsock streams to
// the host. A checkpoint (kiln checkpoint) is why: it pauses the whole VM,
// which ends every vsock connection (a host socket cannot be paused or
// saved), and the VM it is restored in, or goes on in, connects again.
// A process whose stdio were the vsock sockets themselves would be left
// writing to dead ones; a process writing to a pipe never sees the
// change. runc's CRIU restore does the same for a process's stdio pipes:
// it gives the restored process the new ones the engine made.
//
// Before the pause the host asks init to quiesce (ControlCheckpoint):
// the copies to the host finish the write they are in and take no more,
// so everything written so far has left the guest, in order, before
// init's answer on the control connection, and what the process writes
// meanwhile waits in the pipes, in the snapshot's memory. Once the host
// says to go on (ControlResume) the copies go on, on the new connections.

// hostStream is a connection to one host vsock port that init makes
// again when the VM was checkpointed.
type hostStream struct {
	port uint32
	mu   sync.Mutex
	cond *sync.Cond
	f    *os.File
}

func dialStream(port uint32) (*hostStream, error) {
	f, err := dialHost(port)
	if err != nil {
		return nil, err
	}
	s := &hostStream{port: port, f: f}
	s.cond = sync.NewCond(&s.mu)
	return s, nil
}

// current is the connection now.
func (s *hostStream) current() *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

// next waits until the connection is another than old (redial made it).
func (s *hostStream) next(old *os.File) *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.f == old {
		s.cond.Wait()
	}
	return s.f
}

// redial connects again; the old connection, reset by the device, is
// closed once every copy has moved on from it.
func (s *hostStream) redial() error {
	f, err := dialHost(s.port)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.f
	s.f = f
	s.cond.Broadcast()
	s.mu.Unlock()
	time.AfterFunc(time.Second, func() { old.Close() })
	return nil
}

// gate holds the copies to the host while the VM is checkpointed.
type gate struct {
	mu     sync.Mutex
	cond   *sync.Cond
	closed bool
	busy   int
}

func newGate() *gate {
	g := &gate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// enter waits until the gate is open and counts a write in progress.
func (g *gate) enter() {
	g.mu.Lock()
	for g.closed {
		g.cond.Wait()
	}
	g.busy++
	g.mu.Unlock()
}

func (g *gate) leave() {
	g.mu.Lock()
	g.busy--
	g.mu.Unlock()
}

// close stops new writes and waits up to timeout for those in progress;
// false if one is still blocked (the host does not read it), and the
// gate stays open.
func (g *gate) close(timeout time.Duration) bool {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		g.mu.Lock()
		busy := g.busy
		g.mu.Unlock()
		if busy == 0 {
			return true
		}
		if time.Now().After(deadline) {
			g.open()
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *gate) open() {
	g.mu.Lock()
	g.closed = false
	g.cond.Broadcast()
	g.mu.Unlock()
}

// copier copies a pipe's read end (or a terminal's master) to a host
// stream.
type copier struct {
	r        *os.File
	done     chan struct{}
	draining atomic.Bool
}

// toHost copies r to s until r ends, through g; a write that fails on a
// connection the device reset is made again on the next one.
func toHost(r *os.File, s *hostStream, g *gate) *copier {
	c := &copier{r: r, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 32<<10)
		for {
			if c.draining.Load() {
				r.SetReadDeadline(time.Now().Add(drainIdle))
			}
			n, err := r.Read(buf)
			if n > 0 {
				sendAll(buf[:n], s, g)
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

// drainIdle is how long a drained pipe may stay empty before its copy
// ends.
const drainIdle = 100 * time.Millisecond

// drain ends the copy once the process has exited: what the process
// wrote is in the pipe and is read to its end, or until nothing more
// comes for drainIdle (a child of the process that lives on may hold the
// pipe open forever). It returns when the copy has ended.
func (c *copier) drain() {
	c.draining.Store(true)
	c.r.SetReadDeadline(time.Now().Add(drainIdle))
	<-c.done
}

// sendAll writes b to the stream's connection, moving to the next
// connection after a reset.
func sendAll(b []byte, s *hostStream, g *gate) {
	g.enter()
	defer g.leave()
	f := s.current()
	for len(b) > 0 {
		n, err := f.Write(b)
		b = b[n:]
		if err == nil {
			continue
		}
		if !errors.Is(err, unix.ECONNRESET) && !errors.Is(err, unix.EPIPE) && !errors.Is(err, unix.ENOTCONN) {
			return // the host is gone for good: nothing to write to
		}
		g.leave() // a checkpoint waits for this write: let it through
		f = s.next(f)
		g.enter()
	}
}

// fromHost copies the host's input on s to w (a pipe's write end, or a
// terminal's master) until the host ends it, across reconnections. It
// closes w at the end when closeAtEnd is set, so the process reads end
// of file.
func fromHost(s *hostStream, w *os.File, closeAtEnd bool) {
	go func() {
		f := s.current()
		buf := make([]byte, 32<<10)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err == io.EOF || (err == nil && n == 0) {
				if closeAtEnd {
					w.Close()
				}
				return
			}
			if err != nil {
				if !errors.Is(err, unix.ECONNRESET) && !errors.Is(err, unix.ENOTCONN) {
					return
				}
				f = s.next(f)
			}
		}
	}()
}
