package main

import (
	"sync"
	"syscall"
	"time"
)

// reaper waits for the children of a container job's init: the
// container's process, its execs (exec.go), and every orphan the guest's
// processes leave, which are reparented to init. One loop waits for any
// child and hands each status to whoever started that pid; a fork holds
// the reaper's lock until its pid is registered, so a child that ends at
// once is never taken for an orphan.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan int
	running bool
}

// spawn runs fork (which starts one process and returns its pid) and
// returns a channel that gets the process's status as a shell shows it
// (128+N for a death by signal N).
func (r *reaper) spawn(fork func() (int, error)) (int, <-chan int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := fork()
	if err != nil {
		return 0, nil, err
	}
	if r.waiting == nil {
		r.waiting = map[int]chan int{}
	}
	ch := make(chan int, 1)
	r.waiting[pid] = ch
	if !r.running {
		r.running = true
		go r.loop()
	}
	return pid, ch, nil
}

func (r *reaper) loop() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil { // no child now (ECHILD): one may come
			time.Sleep(50 * time.Millisecond)
			continue
		}
		status := ws.ExitStatus()
		if ws.Signaled() {
			status = 128 + int(ws.Signal())
		}
		r.mu.Lock()
		if ch, ok := r.waiting[pid]; ok {
			ch <- status
			delete(r.waiting, pid)
		}
		r.mu.Unlock()
	}
}
