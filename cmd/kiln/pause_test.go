package main

// kiln pause and resume with real guests: the VM's vCPUs stop, so a
// container that counts stops counting, and goes on after resume; a
// paused container can be killed and deleted (oci/pause.go).

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

// counter is a container command that writes a line a second, forever.
var counter = []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 1; done"}

// lines counts the lines of s.
func lines(s string) int { return strings.Count(s, "\n") }

// waitLines waits until count() reaches at least n and returns it.
func waitLines(t *testing.T, what string, n int, count func() int) int {
	t.Helper()
	deadline := time.Now().Add(bootDeadline)
	for {
		c := count()
		if c >= n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lines after %v, waiting for %d", what, c, bootDeadline, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requireStill checks that count() does not move for d: the guest is
// stopped. It returns the count.
func requireStill(t *testing.T, what string, d time.Duration, count func() int) int {
	t.Helper()
	time.Sleep(time.Second) // what the guest wrote before the pause may still be copied
	before := count()
	time.Sleep(d)
	after := count()
	require.Equal(t, before, after, "%s: the paused guest wrote %d lines in %v", what, after-before, d)
	return after
}

func TestOCIPauseResume(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	o := newOCIRuntime(t, "")
	// A failed check leaves no VM running.
	t.Cleanup(func() {
		for _, id := range []string{"p1", "p2", "p3"} {
			o.run("delete", "--force", id)
		}
	})
	count := func(id string) func() int {
		return func() int { out, _ := o.output(id); return lines(out) }
	}

	t.Run("counting stops and goes on", func(t *testing.T) {
		pid := o.createOK("p1", writeBundle(t, rootfs, counter...))
		require.Equal(t, 0, o.run("start", "p1").code)
		n := waitLines(t, "before the pause", 2, count("p1"))
		start := time.Now()
		r := o.run("pause", "p1")
		require.Equal(t, 0, r.code, r.stderr)
		t.Logf("kiln pause: %.2f s, after %d lines", time.Since(start).Seconds(), n)
		require.Equal(t, oci.StatePaused, o.state("p1").Status)
		require.Equal(t, pid, o.state("p1").Pid)
		r = o.run("pause", "p1")
		require.Equal(t, ExitWrongState, r.code, "a second pause: %s", r.stderr)
		require.Contains(t, r.stderr, "container not running (it is paused)")
		r = o.run("start", "p1")
		require.Equal(t, 1, r.code, "start of a paused container: %s", r.stderr)
		// An exec into a paused container is refused, as runc refuses
		// it, rather than queued behind the resume.
		r = o.run("exec", "p1", "echo", "hi")
		require.Equal(t, oci.ExitNotRunning, r.code, "exec while paused: %s", r.stderr)
		require.Equal(t, 1, lines(r.stderr), "one line: %q", r.stderr)
		require.Contains(t, r.stderr, "is paused, not running")
		n = requireStill(t, "paused", 8*time.Second, count("p1"))

		r = o.run("resume", "p1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, specs.StateRunning, o.state("p1").Status)
		waitLines(t, "after resume", n+2, count("p1"))
		r = o.run("exec", "p1", "echo", "hi")
		require.Equal(t, 0, r.code, "exec after resume: %s", r.stderr)
		require.Equal(t, "hi\n", r.stdout)
		r = o.run("resume", "p1")
		require.Equal(t, ExitWrongState, r.code, "resume of a running container: %s", r.stderr)

		// A signal sent while paused reaches the process on resume.
		require.Equal(t, 0, o.run("pause", "p1").code)
		r = o.run("kill", "p1", "TERM")
		require.Equal(t, 0, r.code, r.stderr)
		requireStill(t, "paused, signalled", 3*time.Second, count("p1"))
		require.Equal(t, oci.StatePaused, o.state("p1").Status, "the signal waits for the resume")
		require.Equal(t, 0, o.run("resume", "p1").code)
		require.Equal(t, 128+int(syscall.SIGTERM), waitExit(t, pid))
		r = o.run("pause", "p1")
		require.Equal(t, ExitWrongState, r.code, "pause of a stopped container: %s", r.stderr)
		require.Equal(t, 1, lines(r.stderr), "one line: %q", r.stderr)
		require.Equal(t, 0, o.run("delete", "p1").code)
		o.requireGone("p1", pid)
	})

	t.Run("kill while paused", func(t *testing.T) {
		pid := o.createOK("p2", writeBundle(t, rootfs, counter...))
		require.Equal(t, 0, o.run("start", "p2").code)
		waitLines(t, "before the pause", 1, count("p2"))
		require.Equal(t, 0, o.run("pause", "p2").code)
		r := o.run("kill", "p2", "KILL")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, 128+int(syscall.SIGKILL), waitExit(t, pid))
		require.Equal(t, specs.StateStopped, o.state("p2").Status)
		require.Equal(t, 0, o.run("delete", "p2").code)
		o.requireGone("p2", pid)
	})

	t.Run("delete --force while paused", func(t *testing.T) {
		// Paused before its start: a created container pauses too.
		pid := o.createOK("p3", writeBundle(t, rootfs, "sleep", "1000"))
		require.Equal(t, 0, o.run("pause", "p3").code)
		require.Equal(t, oci.StatePaused, o.state("p3").Status)
		r := o.run("delete", "p3")
		require.Equal(t, 1, r.code, "delete without --force: %s", r.stderr)
		require.Contains(t, r.stderr, "not stopped")
		r = o.run("delete", "--force", "p3")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, 128+int(syscall.SIGKILL), waitExit(t, pid))
		o.requireGone("p3", pid)
	})
}

// TestPodmanPause: podman pause and unpause with kiln as the runtime,
// podman inspect saying paused, and the container going on after.
func TestPodmanPause(t *testing.T) {
	t.Parallel()
	p := newPodman(t)
	r := p.runKiln(append([]string{"-d", "--name", "kiln-pause", podmanImage}, counter...)...)
	require.Equal(t, 0, r.code, r.stderr)
	t.Cleanup(func() { p.run("rm", "--force", "kiln-pause") })
	count := func() int { return lines(p.run("logs", "kiln-pause").stdout) }
	status := func() string {
		r := p.run("inspect", "--format", "{{.State.Status}}", "kiln-pause")
		require.Equal(t, 0, r.code, r.stderr)
		return strings.TrimSpace(r.stdout)
	}
	waitLines(t, "before the pause", 2, count)
	r = p.run("pause", "kiln-pause")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "paused", status())
	n := requireStill(t, "paused", 8*time.Second, count)
	r = p.run("unpause", "kiln-pause")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "running", status())
	waitLines(t, "after unpause", n+2, count)

	// Paused, then removed: podman rm --force kills the paused VM.
	require.Equal(t, 0, p.run("pause", "kiln-pause").code)
	pidOut := p.run("inspect", "--format", "{{.State.Pid}}", "kiln-pause")
	r = p.run("rm", "--force", "kiln-pause")
	require.Equal(t, 0, r.code, r.stderr)
	pid := strings.TrimSpace(pidOut.stdout)
	require.NotEqual(t, "0", pid, "a paused container has its VMM")
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(filepath.Join("/proc", pid)); os.IsNotExist(err) {
			break // conmon reaped it
		}
		if time.Now().After(deadline) {
			t.Fatalf("the VMM %s of the removed paused container is left", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
