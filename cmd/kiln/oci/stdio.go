package oci

import (
	"io"
	"net"
	"sync"
	"time"
)

// streams is the host side of one guest process's stdio: the listeners
// on its vsock ports (stdin, stdout and stderr; or with a terminal, one
// stream both ways) and the copies between the connections the guest
// makes there and the host's own streams. The container's process (Link)
// and an exec's (ExecProxy) each have one.
//
// Each listener takes every connection made to it, not only the first.
// The guest's connect can give up after kiln's vsock device has already
// connected here: Linux gives a vsock connect 2 s by default, and a
// guest on a loaded host can take longer to see the device's answer. The
// guest then resets that connection, the device closes this end of it,
// and the guest connects again. A listener that took only the first
// connection would copy the dead one and leave the live one unread: the
// process's output lost, and the guest waiting for the host to read it.
// (The guest's init gives its connects longer, guest/init/vsock.go; this
// is what keeps a stray connection harmless all the same.)
//
// Input waits for the process's start (started): what is written to a
// stray connection before the device closed it is lost. The guest resets
// a stray connection before its next connect completes, and the device
// closes it as it reads the reset, in the order of the guest's packets:
// so before the guest's report that the process is set up, or started,
// reaches the host.
type streams struct {
	lns   []net.Listener
	in    *feeder
	loops sync.WaitGroup // accept loops, until the listeners close
	out   sync.WaitGroup // copies of the guest's output still running
}

// relayStdio starts copying: stdin to the guest, the guest's output to
// stdout and stderr. lns are the listeners of stdin, stdout and stderr,
// or of the terminal alone.
func relayStdio(lns []net.Listener, stdin io.Reader, stdout, stderr io.Writer) *streams {
	in := &feeder{r: stdin, live: make(chan struct{})}
	s := &streams{lns: lns, in: in}
	if len(lns) == 1 {
		// One connection at a time: the input goes to one terminal.
		s.serve(lns[0], func(c net.Conn) {
			s.out.Add(1)
			defer s.out.Done()
			defer c.Close()
			done := make(chan struct{})
			fed := make(chan struct{})
			go func() { in.to(c, done); close(fed) }()
			io.Copy(&sink{w: stdout}, c) // until the guest's terminal is done
			close(done)
			c.Close()
			<-fed
		})
		return s
	}
	s.serve(lns[0], func(c net.Conn) {
		defer c.Close()
		// The guest writes nothing here: an end read is the guest's side
		// closed (a stray connection reset), and the input goes on to the
		// next connection.
		gone := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(gone) }()
		if in.to(c, gone) {
			// The end of stdin: the process reads end of file.
			c.(*net.UnixConn).CloseWrite()
		}
	})
	for i, w := range []io.Writer{stdout, stderr} {
		s.serve(lns[1+i], func(c net.Conn) {
			s.out.Add(1)
			go func() {
				defer s.out.Done()
				io.Copy(&sink{w: w}, c)
				// Closing tells the guest everything arrived (it waits
				// for it before the process's end is final).
				c.Close()
			}()
		})
	}
	return s
}

// started lets the input through: the guest reported its process set up
// or started, so every connection it gave up on is closed.
func (s *streams) started() {
	s.in.once.Do(func() { close(s.in.live) })
}

// serve calls handle for each connection ln takes, one after another,
// until ln closes.
func (s *streams) serve(ln net.Listener, handle func(net.Conn)) {
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
}

// wait stops taking connections, the process having ended (it connected
// its streams before it started), and waits up to timeout for its output
// to be copied to its end.
func (s *streams) wait(timeout time.Duration) {
	s.close()
	done := make(chan struct{})
	go func() {
		s.loops.Wait() // no more copies start
		s.out.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// close closes the listeners, which removes their socket files.
func (s *streams) close() {
	for _, ln := range s.lns {
		ln.Close()
	}
}

// feeder hands the host's input to the guest's connections one after
// another: a chunk that a connection did not take goes to the next one.
// It reads nothing before live closes.
type feeder struct {
	r       io.Reader
	live    chan struct{} // closed by started
	once    sync.Once     // closes live
	reading sync.Once     // starts read
	chunks  chan []byte   // closed at the input's end
	pending []byte        // read, not yet written
}

// to writes the input to c until it ends (true), c takes no more, or done
// closes (false).
func (f *feeder) to(c net.Conn, done <-chan struct{}) bool {
	select {
	case <-f.live:
	case <-done:
		return false
	}
	f.reading.Do(func() {
		f.chunks = make(chan []byte)
		go f.read()
	})
	for {
		if f.pending == nil {
			select {
			case b, ok := <-f.chunks:
				if !ok {
					return true
				}
				f.pending = b
			case <-done:
				return false
			}
		}
		if _, err := c.Write(f.pending); err != nil {
			return false
		}
		f.pending = nil
	}
}

func (f *feeder) read() {
	defer close(f.chunks)
	for {
		b := make([]byte, 32<<10)
		n, err := f.r.Read(b)
		if n > 0 {
			f.chunks <- b[:n]
		}
		if err != nil {
			return
		}
	}
}

// sink writes to w until a write fails (the reader went away), then
// discards: the guest's stream is still read to its end, so the guest is
// never left waiting.
type sink struct {
	w      io.Writer
	failed bool
}

func (s *sink) Write(p []byte) (int, error) {
	if !s.failed {
		if _, err := s.w.Write(p); err != nil {
			s.failed = true
		}
	}
	return len(p), nil
}
