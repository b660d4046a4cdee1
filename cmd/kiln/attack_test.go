package main

// TestGuestAttack: the guest as the attacker. A guest program
// (guest/attack) spends a time budget driving kiln's devices with hostile
// input from inside the VM, then the test checks what kiln must never do,
// whatever the guest sends.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/trace"
)

// The attack's shape. The guest has two disks, two shares, a vsock device
// and the entropy device; it takes the first disk, the first share, vsock
// and entropy from its kernel's drivers and attacks them, and keeps the
// second disk and the second share, which must still work afterwards.
const (
	attackDiskSize     = 4 << 20
	attackWritableSize = 1 << 20 // the attacker writes sectors in the first MiB only
	attackVsockPort    = 5000
	keptDiskMarker     = "KEEP-DISK-MARKER"
	keptShareText      = "hello from the kept share\n"
	// attackRSSOverGuest bounds kiln's peak resident memory above the
	// guest's RAM (which kiln's RSS includes once the guest touched it).
	// Before the bounds of docs/reliability.md, an attack reached several
	// GiB.
	attackRSSOverGuest = 160 << 20
	attackGuestMemory  = 128 << 20
)

// attackBudget is how long the guest attacks: KILN_ATTACK_BUDGET, or 20 s
// (10 s on a PVM host, whose guests run their kernel code far slower; the
// budget is the guest's time, so the attack is no shorter in steps taken
// by kiln, only in steps the guest manages to take).
func attackBudget(t *testing.T) time.Duration {
	if s := os.Getenv("KILN_ATTACK_BUDGET"); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err, "KILN_ATTACK_BUDGET")
		return d
	}
	if kvm.IsPVM() {
		return 10 * time.Second
	}
	return 20 * time.Second
}

// attackSeed is KILN_ATTACK_SEED, to repeat a run, or a new one.
func attackSeed(t *testing.T) uint64 {
	if s := os.Getenv("KILN_ATTACK_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "KILN_ATTACK_SEED")
		return n
	}
	return rand.Uint64()&(1<<53-1) | 1
}

// vsockHost is the host program behind the attacked vsock device's port:
// it accepts every connection and reads it to the end.
type vsockHost struct {
	ln          net.Listener
	accepted    atomic.Int64
	open, most  atomic.Int64
	read        atomic.Int64
	wg          sync.WaitGroup
	connsMu     sync.Mutex
	connections []net.Conn
}

func newVsockHost(t *testing.T, path string) *vsockHost {
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	h := &vsockHost{ln: ln}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.accepted.Add(1)
			n := h.open.Add(1)
			for m := h.most.Load(); n > m && !h.most.CompareAndSwap(m, n); m = h.most.Load() {
			}
			h.connsMu.Lock()
			h.connections = append(h.connections, c)
			h.connsMu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				k, _ := io.Copy(io.Discard, c)
				h.read.Add(k)
				h.open.Add(-1)
				c.Close()
			}()
		}
	}()
	return h
}

func (h *vsockHost) close() {
	h.ln.Close()
	h.connsMu.Lock()
	for _, c := range h.connections {
		c.Close()
	}
	h.connsMu.Unlock()
	h.wg.Wait()
}

// runWatched runs kiln with args under deadline, and reads its peak
// resident memory (VmHWM) while it runs.
func runWatched(t *testing.T, deadline time.Duration, args ...string) (run, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBinary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	require.NoError(t, cmd.Start())
	var hwm atomic.Int64
	done := make(chan struct{})
	go func() {
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if kb := vmHWM(status); kb > hwm.Load() {
				hwm.Store(kb)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	r := run{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("kiln %q: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("kiln %q did not finish within %v\nstdout:\n%s\nstderr:\n%s", args, deadline, r.stdout, r.stderr)
	}
	t.Logf("kiln %q: exit %d after %.1f s", args, r.code, time.Since(start).Seconds())
	return r, hwm.Load() << 10
}

// vmHWM reads VmHWM (kB) from a /proc/PID/status file, or 0.
func vmHWM(status string) int64 {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// attackDisk makes the disk the guest attacks: a pattern that says which
// sector each byte is in, so any change outside the first MiB shows.
func attackDisk(t *testing.T, path string) []byte {
	data := make([]byte, attackDiskSize)
	for i := range data {
		data[i] = byte(i/512) ^ byte(i)
	}
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return data
}

func TestGuestAttack(t *testing.T) {
	k, i := guestFiles(t)
	dir := t.TempDir()
	seed, budget := attackSeed(t), attackBudget(t)
	t.Logf("attack seed %d, budget %v: repeat with KILN_ATTACK_SEED=%d KILN_ATTACK_BUDGET=%v", seed, budget, seed, budget)

	victim := filepath.Join(dir, "victim.img")
	victimData := attackDisk(t, victim)
	kept := filepath.Join(dir, "kept.img")
	keptData := append([]byte(keptDiskMarker), make([]byte, 64<<10-len(keptDiskMarker))...)
	require.NoError(t, os.WriteFile(kept, keptData, 0o644))

	outer, attacked, marker := shareTree(t)
	var markerStat unix.Stat_t
	require.NoError(t, unix.Stat(marker, &markerStat))
	keptShare := filepath.Join(outer, "kept")
	require.NoError(t, os.Mkdir(keptShare, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(keptShare, "hello"), []byte(keptShareText), 0o644))

	sock := filepath.Join(dir, "v.sock")
	host := newVsockHost(t, fmt.Sprintf("%s_%d", sock, attackVsockPort))
	defer host.close()

	report := filepath.Join(dir, "report.jsonl")
	script := strings.Join([]string{
		fmt.Sprintf("attack -v -seed %d -budget %v -take vda,9p:kiln0,vsock,rng -blk-sectors %d -vsock-port %d",
			seed, budget, attackWritableSize/512, attackVsockPort),
		"s=$?",
		"echo attack-exit=$s",
		// The devices the attacker left to the guest's drivers still work.
		"head -c " + strconv.Itoa(len(keptDiskMarker)) + " /dev/vdb; echo",
		"cat /mnt/kept/hello",
		"exit $s",
	}, "\n")
	r, hwm := runWatched(t, budget+5*time.Minute, "run", "--kernel", k, "--initrd", i,
		"--memory", strconv.Itoa(attackGuestMemory>>20)+"M", "--stats", "--report", report,
		"--disk", victim, "--disk", kept,
		"--share", attacked+":/mnt/attacked", "--share", keptShare+":/mnt/kept",
		"--vsock", "3,"+sock, "--", "sh", "-c", script)
	logConsole(t, r)
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "attack: ") && !strings.HasPrefix(line, "attack: #") {
			t.Log(line)
		}
	}
	t.Logf("kiln's peak RSS %d MiB (guest RAM %d MiB); vsock host: %d connections accepted, at most %d open at once, %d bytes read",
		hwm>>20, attackGuestMemory>>20, host.accepted.Load(), host.most.Load(), host.read.Load())

	// kiln never panics and the VM ends cleanly, on the guest's request,
	// with the attacker's status: 0 when it saw no problem.
	for _, bad := range []string{"panic", "goroutine ", "fatal error", "SIGSEGV", "internal error"} {
		require.NotContains(t, r.stderr, bad)
	}
	require.Contains(t, r.stdout, "attack: seed "+strconv.FormatUint(seed, 10))
	require.NotContains(t, r.stdout, "attack: PROBLEM")
	require.Contains(t, r.stdout, "attack-exit=0")
	require.Equal(t, 0, r.code, "kiln's exit code is the attacker's status")

	// The devices the guest kept still serve it.
	require.Contains(t, r.stdout, keptDiskMarker+"\n")
	require.Contains(t, r.stdout, keptShareText)

	// Each attacked device ends in DEVICE_NEEDS_RESET, with a reason in
	// kiln's report and its --stats.
	took := regexp.MustCompile(`attack: took (virtio-mmio\.\d+) \(([^)]*)\) at 0x[0-9a-f]+ \((mmio [^)]*)\)`).FindAllStringSubmatch(r.stdout, -1)
	require.Len(t, took, 4, "the attacker took vda, the share kiln0, vsock and rng")
	end := attackEnd(t, report)
	require.Equal(t, "reset", end.Reason)
	for _, m := range took {
		name, where := m[2], m[3]
		require.Contains(t, r.stdout, fmt.Sprintf("attack: left %s (%s) at", m[1], name), "%s was left needing a reset", name)
		var last *trace.Failure
		for i := range end.Failures {
			if end.Failures[i].Where == where {
				last = &end.Failures[i]
			}
		}
		require.NotNil(t, last, "%s (%s) has a failure in the report", name, where)
		require.NotEmpty(t, last.Reason)
		require.Regexp(t, `(?m)^virtio-\S+\s+`+regexp.QuoteMeta(where)+`\s+\S+ \S+\s+\S`, r.stderr, "--stats shows %s needing a reset", where)
	}

	// Nothing outside what the guest was given changed: the disk past
	// the attacker's writable range and its size, the file beside the
	// share.
	after, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Len(t, after, attackDiskSize, "the attacked disk's size")
	require.True(t, bytes.Equal(victimData[attackWritableSize:], after[attackWritableSize:]), "the attacked disk changed outside the range the attacker may write")
	keptAfter, err := os.ReadFile(kept)
	require.NoError(t, err)
	require.Equal(t, keptData, keptAfter, "the kept disk")
	markerUntouched(t, marker, markerStat)

	// kiln's memory stayed bounded.
	require.NotZero(t, hwm, "VmHWM was read")
	require.Less(t, hwm, int64(attackGuestMemory+attackRSSOverGuest), "kiln's peak RSS")
	require.LessOrEqual(t, host.most.Load(), int64(1024+64), "host sockets open at once through vsock")
}

// attackEnd reads the end event of a --report file.
func attackEnd(t *testing.T, path string) trace.Event {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var end trace.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e trace.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), sc.Text())
		if e.Event == "end" {
			end = e
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, "end", end.Event, "the report has an end event")
	return end
}
