package main

// kiln exec with real guests: another process in a running container,
// its exit status, stdio, environment, working directory and user; two at
// once; --detach with --pid-file, whose process takes the signals for the
// guest's and exits with its status; a container not running.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

func TestOCIExec(t *testing.T) {
	rootfs := ociGuest(t)
	o := newOCIRuntime(t, "")
	pid := o.createOK("e1", writeBundle(t, rootfs, "sleep", "1000"))
	r := o.run("start", "e1")
	require.Equal(t, 0, r.code, r.stderr)
	t.Cleanup(func() { o.run("delete", "--force", "e1") })

	t.Run("status and output", func(t *testing.T) {
		start := time.Now()
		r := o.run("exec", "e1", "echo", "-n", "hi")
		t.Logf("kiln exec echo: %.2f s", time.Since(start).Seconds())
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "hi", r.stdout)
		r = o.run("exec", "e1", "sh", "-c", "echo out; echo err >&2; exit 3")
		require.Equal(t, 3, r.code, r.stderr)
		require.Equal(t, "out\n", r.stdout)
		require.Equal(t, "err\n", r.stderr)
	})

	t.Run("stdin", func(t *testing.T) {
		r := runEnv(t, o.env, "from stdin\n", kilnBinary, "--root", o.root, "exec", "e1", "cat")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "from stdin\n", r.stdout)
	})

	t.Run("env cwd user", func(t *testing.T) {
		r := o.run("exec", "--env", "FOO=bar", "-e", "HOME=/tmp", "--cwd", "/proc", "--user", "1000:1001",
			"e1", "sh", "-c", `echo "$FOO $HOME $PATH"; pwd; grep -E '^(Uid|Gid):' /proc/self/status`)
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 4, r.stdout)
		require.Equal(t, "bar /tmp /bbin:/bin", lines[0], "config.json's environment, --env over it")
		require.Equal(t, "/proc", lines[1])
		require.Equal(t, []string{"Uid:", "1000", "1000", "1000", "1000"}, strings.Fields(lines[2]))
		require.Equal(t, []string{"Gid:", "1001", "1001", "1001", "1001"}, strings.Fields(lines[3]))
	})

	t.Run("process file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "process.json")
		require.NoError(t, os.WriteFile(f, []byte(`{"args":["sh","-c","echo $X; pwd"],"env":["X=from-file"],"cwd":"/tmp","user":{"uid":0,"gid":0}}`), 0o644))
		r := o.run("exec", "--process", f, "e1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "from-file\n/tmp\n", r.stdout)
	})

	t.Run("not found", func(t *testing.T) {
		r := o.run("exec", "e1", "/no/such/command")
		require.Equal(t, 127, r.code, r.stderr)
		require.Contains(t, r.stderr, "no/such/command")
		require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line: %q", r.stderr)
	})

	t.Run("two at once", func(t *testing.T) {
		// The first waits for a file the second makes: both run at once.
		first := make(chan run, 1)
		go func() {
			first <- o.run("exec", "e1", "sh", "-c", "while ! test -e /tmp/go; do sleep 0.1; done; echo first")
		}()
		time.Sleep(2 * time.Second)
		r := o.run("exec", "e1", "sh", "-c", "echo second > /tmp/go; echo second")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "second\n", r.stdout)
		select {
		case r := <-first:
			require.Equal(t, 0, r.code, r.stderr)
			require.Equal(t, "first\n", r.stdout)
		case <-time.After(bootDeadline):
			t.Fatal("the first exec did not end after the second made its file")
		}
	})

	t.Run("detach pid file and signals", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "exec.pid")
		out, err := os.Create(filepath.Join(t.TempDir(), "out"))
		require.NoError(t, err)
		defer out.Close()
		cmd := exec.Command(kilnBinary, "--root", o.root, "exec", "--detach", "--pid-file", pidFile, "e1",
			"sh", "-c", "trap 'echo got TERM; exit 42' TERM; echo ready; while true; do sleep 0.1; done")
		cmd.Env = append(os.Environ(), o.env...)
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Run(), "kiln exec --detach returns once the process started")
		b, err := os.ReadFile(pidFile)
		require.NoError(t, err)
		epid, err := strconv.Atoi(string(b))
		require.NoError(t, err, "bare digits: %q", b)
		// The shell must have set its trap: wait for its line.
		deadline := time.Now().Add(bootDeadline)
		for {
			got, _ := os.ReadFile(out.Name())
			if strings.Contains(string(got), "ready") {
				break
			}
			require.True(t, time.Now().Before(deadline), "the exec'd shell never said ready: %q", got)
			time.Sleep(100 * time.Millisecond)
		}
		require.NoError(t, unix.Kill(epid, unix.SIGTERM))
		require.Equal(t, 42, waitExit(t, epid), "the exec process exits with the guest process's status")
		got, _ := os.ReadFile(out.Name())
		require.Contains(t, string(got), "got TERM")
	})

	t.Run("killed by a signal", func(t *testing.T) {
		r := o.run("exec", "e1", "sh", "-c", "kill -9 $$")
		require.Equal(t, 128+int(syscall.SIGKILL), r.code, r.stderr)
	})

	// The container's process still runs after all of them.
	require.NoError(t, unix.Kill(pid, 0))
	r = o.run("kill", "e1", "KILL")
	require.Equal(t, 0, r.code, r.stderr)
	waitExit(t, pid)

	t.Run("not running", func(t *testing.T) {
		r := o.run("exec", "e1", "true")
		require.Equal(t, oci.ExitNotRunning, r.code, r.stderr)
		require.Contains(t, r.stderr, "not running")
		require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line: %q", r.stderr)
	})
}
