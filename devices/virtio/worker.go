package virtio

import (
	"errors"
	"sync"
)

// Handler does one request: it reads the chain's readable buffers, writes
// its writable ones, and returns how many bytes it wrote. An error wrapping
// ErrBadChain stops the queue and asks the driver for a reset.
type Handler func(c *Chain) (written uint32, err error)

// Workers are the goroutines of an activated device: every device starts
// its work with them and Reset stops them all the same way. A queue
// served with Start gets a goroutine of its own, so a slow request (a disk
// flush) never stalls a vCPU or another queue; Go runs any other loop a
// device needs (a tap's receive side, a socket listener).
type Workers struct {
	mu   sync.Mutex
	stop chan struct{}
	wg   sync.WaitGroup
}

// Start serves queue qi of a with h until Stop: it handles every chain
// the driver makes available, and sleeps until the queue's next kick.
func (w *Workers) Start(a *Activation, qi int, h Handler) {
	q, kick := a.Queues[qi], a.Kicks[qi]
	if q.Size == 0 || kick == nil {
		return // the driver did not set this queue up
	}
	w.Go(func(stop <-chan struct{}) {
		for {
			if err := drain(q, h, a.Interrupt); err != nil {
				a.Fail(err)
				return
			}
			select {
			case <-kick:
			case <-stop:
				return
			}
		}
	})
}

// Go runs f in a goroutine until Stop; f must return soon after stop is
// closed.
func (w *Workers) Go(f func(stop <-chan struct{})) {
	stop := w.Stopping()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		f(stop)
	}()
}

// Stopping returns the channel that Stop closes.
func (w *Workers) Stopping() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop == nil {
		w.stop = make(chan struct{})
	}
	return w.stop
}

// Stop ends every goroutine and waits for them. Each wake function runs
// after the stop channel is closed and before the wait: it unblocks a
// goroutine stuck in I/O that no channel reaches (closing a socket). The
// Workers can then be started again (after a device reset and a new
// activation).
func (w *Workers) Stop(wake ...func()) {
	w.mu.Lock()
	stop := w.stop
	w.stop = nil
	w.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	for _, f := range wake {
		f()
	}
	w.wg.Wait()
}

// next takes the driver's next chain from q, waiting for a kick while
// there is none. It returns nil once stop is closed. A device that does
// not answer every chain at once (a receive queue fills a buffer only
// when data comes) takes its chains this way.
func next(q *Queue, kick, stop <-chan struct{}) (*Chain, error) {
	for {
		c, err := q.Pop()
		if err != nil || c != nil {
			return c, err
		}
		more, err := q.ArmNotify()
		if err != nil {
			return nil, err
		}
		if more {
			continue
		}
		select {
		case <-kick:
		case <-stop:
			return nil, nil
		}
	}
}

// give returns a chain the device wrote n bytes into, interrupting the
// driver if it wants to hear of it.
func give(q *Queue, a *Activation, head uint16, n uint32) {
	q.Push(head, n)
	if q.NeedInterrupt() {
		a.Interrupt()
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
