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
