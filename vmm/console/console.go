// Package console connects the guest's serial port to the host's terminal.
//
// Output from the UART is written to the host's stdout in batches, so a
// guest printing one byte per VM exit does not cost one write(2) per byte;
// at most MaxQueued bytes wait, and a guest that prints faster than the
// host reads is held until it reads.
// Input from stdin is fed into the UART's receive FIFO, only as fast as the
// guest drains it. When stdin is a terminal it is put in raw mode, so that
// keys (Ctrl-C, arrows, Tab) go to the guest's shell rather than to kiln,
// and restored on every way out; Ctrl-A is then an escape key as in QEMU:
// Ctrl-A X quits, Ctrl-A Ctrl-A sends a Ctrl-A. When stdin is not a terminal
// its end is sent as Ctrl-D, the end-of-file character of the guest's tty.
package console

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Escape is the key that starts a console command: Ctrl-A.
const Escape = 0x01

// EOF is what the guest's tty reads as end of file: Ctrl-D.
const EOF = 0x04

// MaxQueued bounds the console output a Writer holds for the host while
// a write to the host is under way: a guest prints faster than a slow
// reader of kiln's stdout takes it, and when nobody reads it at all,
// forever. Once this much waits, Write waits for room: the vCPU that
// wrote to the UART is held, as a real UART's busy transmitter holds its
// driver, and the guest goes on when the host reads again. Release ends
// the waiting for good (when the VM stops), so that a stop never waits
// for the host's stdout. At most MaxQueued bytes wait, and as many are
// being written.
const MaxQueued = 1 << 20

// Writer batches console output: Write queues, a goroutine writes.
type Writer struct {
	out      io.Writer
	mu       sync.Mutex
	room     *sync.Cond // signalled when the queue empties or on Release
	buf      []byte
	released bool // Release was called: Write drops what does not fit
	dropped  int  // bytes dropped since
	wake     chan struct{}
	done     chan struct{}
	quit     chan struct{}
}

// NewWriter starts a batching writer to out.
func NewWriter(out io.Writer) *Writer {
	w := &Writer{out: out, wake: make(chan struct{}, 1), done: make(chan struct{}), quit: make(chan struct{})}
	w.room = sync.NewCond(&w.mu)
	go w.loop()
	return w
}

// Write queues p. While MaxQueued bytes wait for the host, it waits for
// room; after Release, what does not fit is dropped.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.buf) > 0 && len(w.buf)+len(p) > MaxQueued && !w.released {
		w.room.Wait()
	}
	if len(w.buf) > 0 && len(w.buf)+len(p) > MaxQueued {
		w.dropped += len(p)
	} else {
		w.buf = append(w.buf, p...)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Release stops Write from waiting, now and from here on: the VM is
// stopping, and the vCPU a slow host holds must let go. Output that does
// not fit is dropped; Dropped says how much.
func (w *Writer) Release() {
	w.mu.Lock()
	w.released = true
	w.room.Broadcast()
	w.mu.Unlock()
}

// Dropped returns how many bytes of output Write dropped after Release.
func (w *Writer) Dropped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

func (w *Writer) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
		case <-w.quit:
			w.flush()
			return
		}
		w.flush()
	}
}

func (w *Writer) flush() {
	w.mu.Lock()
	b := w.buf
	w.buf = nil
	w.room.Broadcast()
	w.mu.Unlock()
	if len(b) > 0 {
		w.out.Write(b)
	}
}

// Close writes what is queued and stops the writer.
func (w *Writer) Close() {
	w.Release()
	close(w.quit)
	<-w.done
}

// Receiver is the guest side of the input: the UART.
type Receiver interface {
	Enqueue(b []byte) int
	Space() <-chan struct{}
}

// Terminal is the host's stdin, possibly in raw mode.
type Terminal struct {
	fd    int
	saved *unix.Termios
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// MakeRaw puts the terminal f in raw mode; Restore undoes it.
func MakeRaw(f *os.File) (*Terminal, error) {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	saved := *t
	// cfmakeraw(3)
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, err
	}
	return &Terminal{fd: fd, saved: &saved}, nil
}

// Restore puts the terminal back as it was. It is safe to call twice.
func (t *Terminal) Restore() {
	if t != nil && t.saved != nil {
		_ = unix.IoctlSetTermios(t.fd, unix.TCSETS, t.saved)
	}
}

// Pump copies in to the guest until in ends or quit is called. With escape
// set, Ctrl-A X calls quit instead of being sent, at any time. Input is
// held back until ready is closed, then delivered in order.
func Pump(in io.Reader, r Receiver, escape bool, quit func(), ready <-chan struct{}) {
	held := make(chan []byte, 1024)
	go func() {
		<-ready
		for b := range held {
			feed(r, b)
		}
	}()
	defer close(held)
	pump(in, escape, quit, func(b []byte) {
		if len(b) > 0 {
			held <- b
		}
	})
}

func pump(in io.Reader, escape bool, quit func(), feed func([]byte)) {
	buf := make([]byte, 256)
	var pendingEscape bool
	for {
		n, err := in.Read(buf)
		var out []byte
		for _, c := range buf[:n] {
			if !escape {
				out = append(out, c)
				continue
			}
			if pendingEscape {
				pendingEscape = false
				switch c {
				case 'x', 'X':
					feed(out)
					quit()
					return
				case Escape:
					out = append(out, Escape)
				}
				continue
			}
			if c == Escape {
				pendingEscape = true
				continue
			}
			out = append(out, c)
		}
		feed(out)
		if err != nil {
			if !escape {
				feed([]byte{EOF})
			}
			return
		}
	}
}

// feed offers b to the guest, waiting while its FIFO is full.
func feed(r Receiver, b []byte) {
	for len(b) > 0 {
		n := r.Enqueue(b)
		b = b[n:]
		if len(b) > 0 {
			<-r.Space()
		}
	}
}
