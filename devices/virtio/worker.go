package virtio

import (
	"errors"
	"sync"
)

// Handler does one request: it reads the chain's readable buffers, writes
// its writable ones, and returns how many bytes it wrote. An error wrapping
// ErrBadChain stops the queue and asks the driver for a reset.
type Handler func(c *Chain) (written uint32, err error)

// Workers runs one goroutine per queue, so a slow request (a disk flush)
// never stalls a vCPU or another queue.
type Workers struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

// Start serves queue qi of a with h until Stop.
func (w *Workers) Start(a *Activation, qi int, h Handler) {
	if w.stop == nil {
		w.stop = make(chan struct{})
	}
	q, kick := a.Queues[qi], a.Kicks[qi]
	if q.Size == 0 || kick == nil {
		return // the driver did not set this queue up
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			if err := drain(q, h, a.Interrupt); err != nil {
				a.Fail(err)
				return
			}
			select {
			case <-kick:
			case <-w.stop:
				return
			}
		}
	}()
}

// Stop ends every goroutine and waits for them.
func (w *Workers) Stop() {
	if w.stop != nil {
		close(w.stop)
		w.wg.Wait()
		w.stop = nil
	}
}

// drain handles every available chain, interrupting the driver as it asks,
// until the queue is empty with notifications re-armed.
func drain(q *Queue, h Handler, interrupt func()) error {
	for {
		for {
			c, err := q.Pop()
			if err != nil {
				return err
			}
			if c == nil {
				break
			}
			n, err := h(c)
			if errors.Is(err, ErrBadChain) {
				return err
			}
			q.Push(c.Head, n)
		}
		if q.NeedInterrupt() {
			interrupt()
		}
		more, err := q.ArmNotify()
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}
