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
			"e1", "sh", "-c", `echo "$FOO $HOME $PATH"; pwd; grep '^Uid:' /proc/self/status; grep '^Gid:' /proc/self/status`)
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
			"sh", "-c", "echo ready; while true; do sleep 0.1; done")
		cmd.Env = append(os.Environ(), o.env...)
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Run(), "kiln exec --detach returns once the process started")
		b, err := os.ReadFile(pidFile)
		require.NoError(t, err)
		epid, err := strconv.Atoi(string(b))
		require.NoError(t, err, "bare digits: %q", b)
		deadline := time.Now().Add(bootDeadline)
		for {
			got, _ := os.ReadFile(out.Name())
			if strings.Contains(string(got), "ready") {
				break
			}
			require.True(t, time.Now().Before(deadline), "the exec'd shell never said ready: %q", got)
			time.Sleep(100 * time.Millisecond)
		}
		// The exec process takes the signal for the guest's shell, which
		// it ends: the exec process exits (it is not killed) with the
		// status of that death.
		require.NoError(t, unix.Kill(epid, unix.SIGTERM))
		var ws unix.WaitStatus
		done := make(chan error, 1)
		go func() {
			_, err := unix.Wait4(epid, &ws, 0, nil)
			done <- err
		}()
		select {
		case err := <-done:
			require.NoError(t, err, "the exec process is the test's child (subreaper)")
		case <-time.After(bootDeadline):
			t.Fatal("the exec process did not end after SIGTERM")
		}
		require.True(t, ws.Exited(), "the exec process exited, not killed: %v", ws)
		require.Equal(t, 128+int(syscall.SIGTERM), ws.ExitStatus())
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

// execProxies returns the pids of the exec processes (kiln _oci-exec)
// running now.
func execProxies() []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		args := strings.Split(string(b), "\x00")
		if len(args) > 1 && args[1] == oci.ExecCommand {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestPodmanExec: podman exec through conmon, which runs kiln exec
// --detach with --process and waits on the exec process's pid.
func TestPodmanExec(t *testing.T) {
	p := newPodman(t)
	r := p.runKiln("-d", "--name", "kiln-exec", podmanImage, "sleep", "1000")
	require.Equal(t, 0, r.code, r.stderr)

	t.Run("echo and exit codes", func(t *testing.T) {
		start := time.Now()
		r := p.run("exec", "kiln-exec", "echo", "hi")
		t.Logf("podman exec echo: %.2f s", time.Since(start).Seconds())
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "hi\n", r.stdout)
		r = p.run("exec", "-e", "X=y", "-w", "/tmp", "-u", "1000", "kiln-exec", "sh", "-c", "echo $X; pwd; grep ^Uid: /proc/self/status; exit 3")
		require.Equal(t, 3, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 3, r.stdout)
		require.Equal(t, "y", lines[0])
		require.Equal(t, "/tmp", lines[1])
		require.Equal(t, []string{"Uid:", "1000", "1000", "1000", "1000"}, strings.Fields(lines[2]))
	})

	t.Run("stdin", func(t *testing.T) {
		r := runEnv(t, nil, "piped\n", "podman", append(append([]string{}, p.base...), "exec", "-i", "kiln-exec", "cat")...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "piped\n", r.stdout)
	})

	t.Run("terminal", func(t *testing.T) {
		r := p.run("exec", "-t", "kiln-exec", "sh", "-c", "ls -l /proc/self/fd/0; echo done")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "/dev/pts/")
		require.Contains(t, r.stdout, "done\r\n", "the guest's terminal turns \\n into \\r\\n")
	})

	t.Run("interactive terminal", func(t *testing.T) {
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("SKIPPED: script(1) is not installed (util-linux): no terminal to give podman exec -it")
		}
		// script gives podman a terminal; what is typed goes to the
		// guest's shell through it.
		cmdline := "podman " + strings.Join(p.base, " ") + " exec -it kiln-exec sh -c 'read line; echo got:$line; exit 5'"
		r := runEnv(t, nil, "typed\n", "script", "-qec", cmdline, "/dev/null")
		require.Equal(t, 5, r.code, "stdout %q stderr %q", r.stdout, r.stderr)
		require.Contains(t, r.stdout, "got:typed")
	})

	t.Run("signal", func(t *testing.T) {
		before := map[int]bool{}
		for _, pid := range execProxies() {
			before[pid] = true
		}
		cmd := exec.Command("podman", append(append([]string{}, p.base...), "exec", "kiln-exec", "sleep", "1000")...)
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var proxy int
		for deadline := time.Now().Add(bootDeadline); proxy == 0; time.Sleep(200 * time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "no kiln exec process appeared")
			for _, pid := range execProxies() {
				if !before[pid] {
					proxy = pid
				}
			}
		}
		time.Sleep(3 * time.Second) // the guest's sleep has started (exec --detach returned)
		require.NoError(t, unix.Kill(proxy, unix.SIGTERM))
		select {
		case err := <-done:
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			require.Equal(t, 128+int(syscall.SIGTERM), ee.ExitCode(), "podman exec reports the guest process's death by SIGTERM")
		case <-time.After(bootDeadline):
			cmd.Process.Kill()
			t.Fatal("podman exec did not end after its exec process got SIGTERM")
		}
	})

	r = p.run("rm", "--force", "--time", "0", "kiln-exec")
	require.Equal(t, 0, r.code, r.stderr)
	for deadline := time.Now().Add(30 * time.Second); len(execProxies()) > 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	require.Empty(t, execProxies(), "no exec process outlives its container")
}

// TestCtrExec: ctr task exec through containerd's runc shim, with kiln as
// the runc binary.
func TestCtrExec(t *testing.T) {
	p := newPodman(t)
	ctr := newContainerd(t, p).ctr
	r := ctr("run", "-d", "--runc-binary", kilnBinary, podmanImage, "kiln-ctr-exec", "sleep", "1000")
	require.Equal(t, 0, r.code, r.stderr)
	t.Cleanup(func() {
		ctr("task", "kill", "-s", "KILL", "kiln-ctr-exec")
		time.Sleep(time.Second)
		ctr("task", "rm", "-f", "kiln-ctr-exec")
		ctr("container", "rm", "kiln-ctr-exec")
	})
	start := time.Now()
	r = ctr("task", "exec", "--exec-id", "x1", "kiln-ctr-exec", "sh", "-c", "echo hi from ctr; exit 3")
	t.Logf("ctr task exec: %.2f s", time.Since(start).Seconds())
	require.Equal(t, 3, r.code, r.stderr)
	require.Equal(t, "hi from ctr\n", r.stdout)
	r = ctr("task", "exec", "--exec-id", "x2", "kiln-ctr-exec", "echo", "again")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "again\n", r.stdout)
}
