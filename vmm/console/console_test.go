package console

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fifo is a Receiver that takes up to n bytes at a time.
type fifo struct {
	mu    sync.Mutex
	got   []byte
	n     int
	space chan struct{}
}

func (f *fifo) Enqueue(b []byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := min(len(b), f.n)
	f.got = append(f.got, b[:k]...)
	return k
}
func (f *fifo) Space() <-chan struct{} { return f.space }

func (f *fifo) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.got)
}

func closed() chan struct{} { c := make(chan struct{}); close(c); return c }

func TestPumpPipedInputEndsWithCtrlD(t *testing.T) {
	f := &fifo{n: 3, space: make(chan struct{})}
	go func() {
		for {
			f.space <- struct{}{}
		}
	}()
	Pump(strings.NewReader("echo hi\n"), f, false, func() { t.Fatal("quit") }, closed())
	require.Eventually(t, func() bool { return f.String() == "echo hi\n\x04" }, time.Second, time.Millisecond)
}

func TestPumpEscape(t *testing.T) {
	f := &fifo{n: 100}
	quit := false
	Pump(strings.NewReader("ab\x01\x01c\x01xnot sent"), f, true, func() { quit = true }, closed())
	require.True(t, quit)
	require.Eventually(t, func() bool { return f.String() == "ab\x01c" }, time.Second, time.Millisecond)
}

func TestPumpHoldsInputUntilReady(t *testing.T) {
	f := &fifo{n: 100}
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { Pump(strings.NewReader("early"), f, false, func() {}, ready); close(done) }()
	<-done
	time.Sleep(10 * time.Millisecond)
	require.Empty(t, f.String())
	close(ready)
	require.Eventually(t, func() bool { return f.String() == "early\x04" }, time.Second, time.Millisecond)
}

func TestWriterBatchesAndFlushesOnClose(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	for _, c := range []byte("hello") {
		w.Write([]byte{c})
	}
	w.Close()
	require.Equal(t, "hello", out.String())
}

// stuckOut is a host stdout that nobody reads until open is closed.
type stuckOut struct {
	open chan struct{}
	mu   sync.Mutex
	n    int
}

func (s *stuckOut) Write(p []byte) (int, error) {
	<-s.open
	s.mu.Lock()
	s.n += len(p)
	s.mu.Unlock()
	return len(p), nil
}

// TestWriterBoundsWhatWaits: a guest prints 8 MiB, a byte a write (one
// VM exit each), to a stdout nobody reads. At most MaxQueued bytes wait
// and the printing vCPU is held; Release lets it go (the rest is
// dropped); once the host reads, Close writes out what waited.
func TestWriterBoundsWhatWaits(t *testing.T) {
	out := &stuckOut{open: make(chan struct{})}
	w := NewWriter(out)
	const total = 4 * MaxQueued // byte by byte, as a guest prints
	printed := make(chan struct{})
	go func() {
		b := []byte{'x'}
		for i := 0; i < total; i++ {
			w.Write(b)
		}
		close(printed)
	}()
	time.Sleep(200 * time.Millisecond)
	w.mu.Lock()
	queued := len(w.buf)
	w.mu.Unlock()
	require.LessOrEqual(t, queued, MaxQueued)
	select {
	case <-printed:
		t.Fatal("the guest printed 4 MiB to a stdout that takes nothing")
	default:
	}
	w.Release()
	select {
	case <-printed:
	case <-time.After(time.Minute): // a loaded machine under -race is slow
		t.Fatal("Release did not let the printing vCPU go")
	}
	close(out.open)
	w.Close()
	require.LessOrEqual(t, out.n, 2*MaxQueued, "at most what waited and what was being written")
	require.Equal(t, total, out.n+w.Dropped(), "every byte written or counted as dropped")
}

// TestWriterPassesEverythingToAReader: a stdout that is read, however
// slowly, gets every byte: the bound holds the guest, it drops nothing.
func TestWriterPassesEverythingToAReader(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	const total = 3 * MaxQueued
	b := bytes.Repeat([]byte("0123456789abcdef"), 256)
	for i := 0; i < total/len(b); i++ {
		w.Write(b)
	}
	w.Close()
	require.Equal(t, total, out.Len())
	require.Zero(t, w.Dropped())
}
