package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// A ready-app snapshot's job (contract.Ready): init starts the app,
// waits here until it is ready, and says so; kiln snapshots the VM at
// that moment, and every VM restored from it resumes here, with the app
// running, and hands init a job of its own for the restored VM's
// entropy, clock and network.

// readyPoll is how often init looks at the condition. Each look is a
// read of /proc/net/tcp or a stat: guest kernel work, which kvm-pvm
// emulates slowly, so not much more often than this.
const readyPoll = 100 * time.Millisecond

// readyWait checks a ready condition against the guest, and the app's
// exit between checks. Its fields are the guest's, or a test's fakes.
type readyWait struct {
	cond      contract.Ready
	now       func() time.Time
	sleep     func(time.Duration)
	listening func(port int) bool
	exists    func(path string) bool
	exited    func() (status int, ok bool) // the app's exit status, once it has exited
}

// newReadyWait waits for cond in this guest, for the app pid.
func newReadyWait(cond contract.Ready, pid int) *readyWait {
	return &readyWait{
		cond: cond, now: time.Now, sleep: time.Sleep,
		listening: func(port int) bool { return listeningOn(port, "/proc/net/tcp", "/proc/net/tcp6") },
		exists: func(path string) bool {
			var st unix.Stat_t
			return unix.Stat(path, &st) == nil
		},
		exited: func() (int, bool) { return reapNoHang(pid) },
	}
}

// wait returns once the condition holds (ready) or the app has exited
// (its status, ready false). started is when the app started.
func (w *readyWait) wait(started time.Time) (status int, ready bool) {
	for {
		if s, ok := w.exited(); ok {
			return s, false
		}
		if w.met(started) {
			return 0, true
		}
		w.sleep(readyPoll)
	}
}

// met reports whether the condition holds now.
func (w *readyWait) met(started time.Time) bool {
	switch c := w.cond; {
	case c.Port != 0:
		return w.listening(c.Port)
	case c.File != "":
		return w.exists(c.File)
	default:
		return w.now().Sub(started) >= c.After
	}
}

// listeningOn reports whether any of the files (/proc/net/tcp and tcp6)
// lists a socket listening on port.
func listeningOn(port int, files ...string) bool {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue // no IPv6 in this kernel
		}
		ok := listensIn(f, port)
		f.Close()
		if ok {
			return true
		}
	}
	return false
}

// maxProcNetLines bounds what listensIn reads of one file.
const maxProcNetLines = 1 << 16

// listensIn reads a /proc/net/tcp table: a header line, then one socket a
// line, "sl local_address rem_address st ...", the local address as
// HEXADDR:HEXPORT and the state in hex, 0A for LISTEN.
func listensIn(r io.Reader, port int) bool {
	sc := bufio.NewScanner(r)
	for n := 0; sc.Scan() && n < maxProcNetLines; n++ {
		f := strings.Fields(sc.Text())
		if n == 0 || len(f) < 4 || f[3] != "0A" {
			continue
		}
		i := strings.LastIndexByte(f[1], ':')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseUint(f[1][i+1:], 16, 16)
		if err == nil && int(p) == port {
			return true
		}
	}
	return false
}

// reapNoHang reaps every child that has exited, without waiting, and
// returns pid's status if it was one of them.
func reapNoHang(pid int) (int, bool) {
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || wpid <= 0 {
			return 0, false
		}
		if wpid == pid {
			return waitStatus(ws), true
		}
	}
}

// waitStatus is a shell's exit status for ws: 128+n for a death by
// signal n.
func waitStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// runApp runs a ready-app snapshot's job: it starts the app, waits until
// it is ready, and asks for a job again (EventAppReady), where the
// snapshot is taken. What runs after is a restored VM's: init applies
// that job's entropy, clock and network, and the app goes on until it
// exits, with kiln's exit status its own. It does not return.
func runApp(job *contract.Job) {
	pid, status := start(job.Argv)
	if pid == 0 {
		end(status, job.Quiet)
	}
	signal(contract.EventRunning)
	if status, ready := newReadyWait(*job.Ready, pid).wait(time.Now()); !ready {
		fmt.Fprintf(os.Stderr, "kiln init: %s exited with status %d before it was ready (%v)\n", job.Argv[0], status, job.Ready)
		end(status, job.Quiet)
	}
	resumed, err := readJobAt(contract.EventAppReady)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln init: the restored VM's job: %v\n", err)
	} else {
		applyRestored(resumed)
	}
	signal(contract.EventRunning)
	end(reap(pid), job.Quiet)
}

// applyRestored takes what of a restored VM's job is its own: entropy,
// the host's time, and the network interfaces (which init takes down
// and up: the guest's stack sees its link change).
func applyRestored(job *contract.Job) {
	if len(job.Seed) > 0 {
		if err := addEntropy(job.Seed); err != nil {
			fmt.Fprintf(os.Stderr, "kiln init: entropy: %v\n", err)
		}
	}
	setClock(job.Time)
	applyNetwork(job.Net)
}
