package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kiln-vmm/kiln/vmm/trace"
)

// launch is one start of a program to be timed: the clock starts just
// before fork and stops when wait returns. If mark is set, the moment a
// line containing it appears on the program's stdout or stderr is recorded
// too, and onMark runs then (with the program still alive) to sample its
// memory.
type launch struct {
	argv   []string
	env    []string
	dir    string
	attr   *syscall.SysProcAttr
	mark   string
	onMark func(pid int)
	// onEvent runs for each event of kiln's report (report set), as it
	// arrives.
	onEvent func(trace.Event)
	// report reads kiln run --report from a pipe given to the program as
	// fd 3 (the caller passes --report /proc/self/fd/3): the mark is then
	// the "userspace" event, and the events are kept in the outcome.
	report  bool
	timeout time.Duration
	// pollHWM samples the process's VmHWM (its peak resident size) while it
	// runs; see peakRSS.
	pollHWM bool
	// start starts the command; nil means cmd.Start. The crun runner starts
	// its commands from a thread in another mount namespace.
	start func(*exec.Cmd) error
}

// outcome is what one launch measured.
type outcome struct {
	marked  bool
	mark    time.Duration // launch to the mark line
	exit    time.Duration // launch to exit
	status  int
	peakRSS uint64        // KiB, the largest VmHWM seen (pollHWM)
	lines   []string      // the last lines the program printed, for errors
	events  []trace.Event // kiln's report (launch.report)
	t0      time.Time     // the launch
}

// reportArgs are the flags that make kiln run write its report where a
// launch with report set reads it.
var reportArgs = []string{"--report", "/proc/self/fd/3"}

// end returns kiln's "end" event, if its report had one.
func (o outcome) end() (trace.Event, bool) {
	for _, e := range o.events {
		if e.Event == "end" {
			return e, true
		}
	}
	return trace.Event{}, false
}

// run starts the program, waits for it (killing its process group at the
// timeout) and returns what was measured. A non-zero exit is not an error
// here; the caller decides.
func (l launch) run(ctx context.Context) (outcome, error) {
	var o outcome
	cmd := exec.Command(l.argv[0], l.argv[1:]...)
	cmd.Env, cmd.Dir = l.env, l.dir
	cmd.SysProcAttr = l.attr
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	// The program writes into pipes whose read ends are ours; with
	// *os.File outputs exec starts no copying goroutines, so Wait returns
	// when the process exits, not when its output is drained.
	outR, outW, err := os.Pipe()
	if err != nil {
		return o, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return o, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW

	var (
		mu      sync.Mutex
		once    sync.Once
		t0      time.Time
		started = make(chan struct{})
		readers sync.WaitGroup
	)
	markNow := func() {
		once.Do(func() {
			d := time.Since(t0)
			mu.Lock()
			o.marked, o.mark = true, d
			mu.Unlock()
			if l.onMark != nil {
				l.onMark(cmd.Process.Pid)
			}
		})
	}
	scan := func(r io.ReadCloser) {
		defer readers.Done()
		defer r.Close()
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				line = strings.TrimRight(line, "\r\n")
				<-started
				if l.mark != "" && strings.Contains(line, l.mark) {
					markNow()
				}
				mu.Lock()
				o.lines = append(o.lines, line)
				if len(o.lines) > 20 {
					o.lines = o.lines[1:]
				}
				mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}
	readEvents := func(r io.ReadCloser) {
		defer readers.Done()
		defer r.Close()
		dec := json.NewDecoder(r)
		for {
			var e trace.Event
			if err := dec.Decode(&e); err != nil {
				return
			}
			<-started
			if e.Event == "userspace" {
				markNow()
			}
			if l.onEvent != nil {
				l.onEvent(e)
			}
			mu.Lock()
			if len(o.events) < 16 {
				o.events = append(o.events, e)
			}
			mu.Unlock()
		}
	}
	readers.Add(2)
	go scan(outR)
	go scan(errR)
	var repW *os.File
	if l.report {
		repR, w, err := os.Pipe()
		if err != nil {
			outR.Close()
			errR.Close()
			outW.Close()
			errW.Close()
			return o, err
		}
		repW = w
		cmd.ExtraFiles = []*os.File{repW}
		readers.Add(1)
		go readEvents(repR)
	}

	start := l.start
	if start == nil {
		start = (*exec.Cmd).Start
	}
	t0 = time.Now()
	o.t0 = t0
	err = start(cmd)
	outW.Close()
	errW.Close()
	if repW != nil {
		repW.Close()
	}
	close(started)
	if err != nil {
		readers.Wait()
		return o, fmt.Errorf("start %s: %w", l.argv[0], err)
	}

	var timedOut atomic.Bool
	hwm := make(chan uint64, 1)
	if l.pollHWM {
		go func() { hwm <- pollPeakRSS(cmd.Process.Pid) }()
	} else {
		hwm <- 0
	}
	timer := time.AfterFunc(l.timeout, func() {
		timedOut.Store(true)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	stop := context.AfterFunc(ctx, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	werr := cmd.Wait()
	exit := time.Since(t0)
	timer.Stop()
	stop()
	// A container's children could keep the pipes open; do not wait on
	// them for long.
	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
	}

	mu.Lock()
	defer mu.Unlock()
	o.exit = exit
	o.peakRSS = <-hwm
	o.status = cmd.ProcessState.ExitCode()
	switch {
	case ctx.Err() != nil:
		return o, ctx.Err()
	case timedOut.Load():
		return o, fmt.Errorf("%s did not finish within %v%s", l.argv[0], l.timeout, o.tail())
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return o, werr
	}
	return o, nil
}

// tail is the program's last output lines, for an error message.
func (o outcome) tail() string {
	if len(o.lines) == 0 {
		return ""
	}
	last := o.lines
	if len(last) > 3 {
		last = last[len(last)-3:]
	}
	return "; it printed: " + strings.Join(last, " | ")
}

// pollPeakRSS reads the process's VmHWM from /proc/PID/status until the
// process is gone and returns the largest value, in KiB. VmHWM is the
// high-water mark of the process's own memory since its exec, so the last
// reading is within a fraction of a millisecond of the true peak.
// getrusage's ru_maxrss would be simpler but is useless here: a child
// started by a Go program inherits the parent's resident size as its
// maximum at exec (the kernel folds the old, shared address space into it).
func pollPeakRSS(pid int) uint64 {
	path := fmt.Sprintf("/proc/%d/status", pid)
	var peak uint64
	buf := make([]byte, 4096)
	for {
		f, err := os.Open(path)
		if err != nil {
			return peak
		}
		n, _ := f.Read(buf)
		f.Close()
		v, ok := statusKiB(buf[:n], "VmHWM:")
		if !ok {
			return peak // a zombie has no memory left to report
		}
		peak = max(peak, v)
		time.Sleep(200 * time.Microsecond)
	}
}

// statusKiB reads a "Key:   123 kB" line of /proc/PID/status.
func statusKiB(status []byte, key string) (uint64, bool) {
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			v, err := strconv.ParseUint(f[0], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}
