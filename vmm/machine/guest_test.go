package machine

// A real guest, driven through the Machine API: the kernel and initramfs
// that `make` builds. The test skips only where /dev/kvm cannot be opened
// (or with -short); where it can, a missing kernel or initramfs is a
// failure, not a skip. Other tests boot guests at the same time on a
// shared host: run it under `flock /tmp/kiln-guest.lock`.

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm/kvmtest"
)

// bootDeadline bounds one guest boot: tens of seconds under kvm-pvm
// (software nested KVM), more when other guests run.
const bootDeadline = 3 * time.Minute

func guestFiles(t *testing.T) (kernel, initrd string) { return kvmtest.GuestFiles(t) }

// console is the guest's serial output, written on a vCPU's thread and
// read by the test.
type console struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitFor waits until the console shows s, or the VM ends.
func (c *console) waitFor(t *testing.T, s string, ran <-chan Result) {
	t.Helper()
	deadline := time.After(bootDeadline)
	for !strings.Contains(c.String(), s) {
		select {
		case r := <-ran:
			t.Fatalf("the VM ended (%v: %v) before %q; console:\n%s", r.Reason, r.Err, s, c)
		case <-deadline:
			t.Fatalf("no %q on the console; console:\n%s", s, c)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestGuestPauseSaveResume boots a guest that pauses when its init is
// ready (SnapshotAtReady), saves it, and lets it go on with a command that
// counts; pauses it again while the command runs (nothing more comes out
// while it is paused), saves it again, and resumes it: the command
// finishes, its output whole and in order, with its exit status. The
// first snapshot then restores into a VM that runs another command.
func TestGuestPauseSaveResume(t *testing.T) {
	kernel, initrd := guestFiles(t)
	words := []string{"1", "2", "3", "4", "5", "6"}
	cfg := &config.Config{Shape: config.Shape{Kernel: kernel, Initrd: initrd, CPUs: 2, Memory: 128 << 20},
		Command: []string{"sh", "-c", fmt.Sprintf("for i in %s; do echo n$i; sleep 0.3; done; exit 7", strings.Join(words, " "))}}
	out := &console{}
	m, err := New(cfg, Options{Console: out, SnapshotAtReady: true})
	require.NoError(t, err)
	defer m.Close()
	ran := make(chan Result, 1)
	go func() { ran <- m.Run() }()

	// 1. Paused at ready: save, and go on.
	select {
	case <-m.PausedAtReady():
	case r := <-ran:
		t.Fatalf("the VM ended (%v: %v) before its init was ready; console:\n%s", r.Reason, r.Err, out)
	case <-time.After(bootDeadline):
		t.Fatalf("the guest's init was not ready in time; console:\n%s", out)
	}
	require.True(t, m.Paused())
	atReady := filepath.Join(t.TempDir(), "ready")
	_, err = m.SaveSnapshot(atReady, "test")
	require.NoError(t, err)
	require.NoError(t, VerifyMemory(atReady))
	require.NoError(t, m.Resume())

	// 2. Paused while the command runs: nothing comes out while it is.
	out.waitFor(t, "n2\n", ran)
	require.NoError(t, m.Pause())
	require.True(t, m.Paused())
	during := out.String()
	time.Sleep(time.Second)
	require.Equal(t, during, out.String(), "no output while paused")
	midRun := filepath.Join(t.TempDir(), "running")
	times, err := m.SaveSnapshot(midRun, "test")
	require.NoError(t, err)
	require.Positive(t, times.Written)
	snap, err := ReadSnapshot(midRun)
	require.NoError(t, err)
	require.Len(t, snap.VCPUs, 2)
	require.NoError(t, VerifyMemory(midRun))
	require.NoError(t, m.Resume())
	require.False(t, m.Paused())

	// 3. The command finishes as if nothing had happened.
	var r Result
	select {
	case r = <-ran:
	case <-time.After(bootDeadline):
		t.Fatalf("the command did not finish; console:\n%s", out)
	}
	require.Equal(t, ReasonReset, r.Reason, "%v; console:\n%s", r.Err, out)
	require.True(t, r.HasStatus, "console:\n%s", out)
	require.Equal(t, 7, r.ExitStatus)
	got := regexp.MustCompile(`n\d+`).FindAllString(out.String(), -1)
	var want []string
	for _, w := range words {
		want = append(want, "n"+w)
	}
	require.Equal(t, want, got, "every line once, in order; console:\n%s", out)

	// 4. The snapshot taken at ready restores, and runs a command of its
	// own.
	out2 := &console{}
	m2, err := Restore(atReady, &config.Config{Command: []string{"sh", "-c", "echo restored; exit 4"}}, Options{Console: out2})
	require.NoError(t, err)
	defer m2.Close()
	r = m2.Run()
	require.Equal(t, ReasonReset, r.Reason, "%v; console:\n%s", r.Err, out2)
	require.Equal(t, 4, r.ExitStatus)
	require.Contains(t, out2.String(), "restored")
}
