package main

// kiln as an OCI runtime, driven directly as an engine drives it (create,
// start, state, kill, delete on a bundle), with real guests under KVM.
// Like an engine, the test process is a subreaper: a container's VMM,
// whose parent kiln create exits, becomes its child, and its exit status
// is the container's.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/cmd/kiln/bench"
	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

var (
	ociOnce   sync.Once
	ociRootfs string // the initramfs unpacked: the image of every test container
	ociErr    error
)

// ociGuest makes what the OCI tests share: the guest kernel and
// initramfs beside the kiln binary (where kiln finds them when podman
// runs it), the rootfs, and this process a subreaper. It skips where
// guestFiles does.
func ociGuest(t *testing.T) string {
	t.Helper()
	k, i := guestFiles(t)
	ociOnce.Do(func() {
		dir := filepath.Dir(kilnBinary)
		for name, target := range map[string]string{"vmlinux": k, "initramfs.cpio": i} {
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil && !os.IsExist(err) {
				ociErr = err
				return
			}
		}
		ociRootfs = filepath.Join(dir, "rootfs")
		if ociErr = bench.UnpackRootfs(i, ociRootfs); ociErr != nil {
			return
		}
		ociErr = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	})
	require.NoError(t, ociErr)
	return ociRootfs
}

// writeBundle writes a bundle whose root is rootfs (read-only), running
// args, with the mounts an engine asks for.
func writeBundle(t *testing.T, rootfs string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	spec := specs.Spec{
		Version: "1.0.2",
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bbin:/bin", "HOME=/"},
			Cwd:  "/",
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024},
			},
		},
		Hostname: "kiln-oci",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}},
		},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "mount"}, {Type: "network"}}},
	}
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	return dir
}

// ociRuntime runs kiln's OCI commands with one state root and cache.
type ociRuntime struct {
	t     *testing.T
	root  string
	env   []string
	files string // where containers' stdout and stderr go
}

func newOCIRuntime(t *testing.T, cache string) *ociRuntime {
	return &ociRuntime{t: t, root: t.TempDir(), env: []string{"KILN_CACHE=" + cache}, files: t.TempDir()}
}

// run runs `kiln --root ROOT args...`.
func (o *ociRuntime) run(args ...string) run {
	o.t.Helper()
	return runEnv(o.t, o.env, "", kilnBinary, append([]string{"--root", o.root}, args...)...)
}

// create creates a container whose stdio are files (an engine's pipes
// would hold the test's own reads open for as long as the VMM lives).
func (o *ociRuntime) create(id, bundle string) *exec.Cmd {
	o.t.Helper()
	return o.command(id, "create", "--bundle", bundle, "--pid-file", o.pidFile(id), id)
}

// command is `kiln --root ROOT args...` for container id, whose stdio
// are id's files.
func (o *ociRuntime) command(id string, args ...string) *exec.Cmd {
	o.t.Helper()
	cmd := exec.Command(kilnBinary, append([]string{"--root", o.root}, args...)...)
	cmd.Env = append(os.Environ(), o.env...)
	stdout, err := os.Create(filepath.Join(o.files, id+".out"))
	require.NoError(o.t, err)
	stderr, err := os.Create(filepath.Join(o.files, id+".err"))
	require.NoError(o.t, err)
	// Open until create has started the VMM with them.
	o.t.Cleanup(func() { stdout.Close(); stderr.Close() })
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd
}

func (o *ociRuntime) pidFile(id string) string { return filepath.Join(o.files, id+".pid") }

// output returns what the container wrote to stdout and stderr.
func (o *ociRuntime) output(id string) (string, string) {
	out, _ := os.ReadFile(filepath.Join(o.files, id+".out"))
	errb, _ := os.ReadFile(filepath.Join(o.files, id+".err"))
	return string(out), string(errb)
}

// createOK creates the container and returns its VMM's pid.
func (o *ociRuntime) createOK(id, bundle string) int {
	o.t.Helper()
	cmd := o.create(id, bundle)
	start := time.Now()
	err := cmd.Run()
	out, errs := o.output(id)
	require.NoError(o.t, err, "create %s: stdout %q stderr %q", id, out, errs)
	o.t.Logf("kiln create %s: %.1f s", id, time.Since(start).Seconds())
	return o.pid(id)
}

func (o *ociRuntime) pid(id string) int {
	o.t.Helper()
	b, err := os.ReadFile(o.pidFile(id))
	require.NoError(o.t, err)
	pid, err := strconv.Atoi(string(b))
	require.NoError(o.t, err, "the pid file holds bare digits: %q", b)
	return pid
}

// state returns the container's OCI state.
func (o *ociRuntime) state(id string) specs.State {
	o.t.Helper()
	r := o.run("state", id)
	require.Equal(o.t, 0, r.code, r.stderr)
	var st specs.State
	require.NoError(o.t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
	require.Equal(o.t, id, st.ID)
	require.True(o.t, strings.HasPrefix(st.Version, "1."), st.Version)
	require.NotEmpty(o.t, st.Bundle)
	return st
}

// waitExit waits for the VMM (this process's child, adopted as a
// subreaper) and returns its exit code as an engine computes it.
func waitExit(t *testing.T, pid int) int {
	t.Helper()
	done := make(chan int, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				done <- -1
				return
			}
			break
		}
		if ws.Signaled() {
			done <- 128 + int(ws.Signal())
			return
		}
		done <- ws.ExitStatus()
	}()
	select {
	case code := <-done:
		require.NotEqual(t, -1, code, "the VMM %d is not a child of the test (subreaper)", pid)
		return code
	case <-time.After(bootDeadline):
		t.Fatalf("the VMM %d did not exit within %v", pid, bootDeadline)
		return 0
	}
}

// requireGone checks that nothing of the container is left: no state
// directory, no VMM process (none with its state directory in its
// command line, reaped or not).
func (o *ociRuntime) requireGone(id string, pid int) {
	o.t.Helper()
	dir := filepath.Join(o.root, id)
	require.NoDirExists(o.t, dir)
	if pid > 0 {
		err := unix.Kill(pid, 0)
		require.ErrorIs(o.t, err, unix.ESRCH, "the VMM %d is gone", pid)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		args := strings.Split(string(b), "\x00")
		if len(args) > 1 && args[1] == "_oci-vmm" && strings.Contains(string(b), dir) {
			o.t.Fatalf("a VMM of %s is left: %s %q", id, p, args)
		}
	}
}

// TestOCILifecycle takes containers through the OCI states: creating,
// created, running, stopped; their exit status, stdio and signals; and a
// container the guest cannot set up, which leaves nothing behind.
func TestOCILifecycle(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	o := newOCIRuntime(t, "") // the default warm cache, the podman tests' too

	// c1: sleeps until signalled. While create works (a restore and the
	// guest's setup, or first a cold boot for the snapshot), its state
	// says creating: read here as kiln state reads it, as often as
	// possible, since on hardware KVM that lasts a fraction of a second.
	b1 := writeBundle(t, rootfs, "sleep", "1000")
	create := o.create("c1", b1)
	require.NoError(t, create.Start())
	created := make(chan error, 1)
	go func() { created <- create.Wait() }()
	seen := map[specs.ContainerState]bool{}
	deadline := time.After(bootDeadline)
wait:
	for {
		select {
		case err := <-created:
			out, errs := o.output("c1")
			require.NoError(t, err, "create: %s %s", out, errs)
			break wait
		case <-deadline:
			t.Fatal("create did not finish")
		default:
			if c, err := (oci.Store{Root: o.root}).Open("c1", false); err == nil {
				seen[c.Status()] = true
			}
			time.Sleep(time.Millisecond)
		}
	}
	require.True(t, seen[specs.StateCreating], "states seen while create ran: %v", seen)
	pid1 := o.pid("c1")
	st := o.state("c1")
	require.Equal(t, specs.StateCreated, st.Status)
	require.Equal(t, pid1, st.Pid)
	require.NoError(t, unix.Kill(pid1, 0), "the VMM runs")

	r := o.run("create", "--bundle", b1, "c1")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "already exists")

	r = o.run("start", "c1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, specs.StateRunning, o.state("c1").Status)
	r = o.run("start", "c1")
	require.Equal(t, 1, r.code, "a second start")

	r = o.run("kill", "c1", "15")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 128+int(syscall.SIGTERM), waitExit(t, pid1), "SIGTERM reached the process in the guest")
	require.Equal(t, specs.StateStopped, o.state("c1").Status)
	r = o.run("kill", "c1", "15")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "not running")
	r = o.run("delete", "c1")
	require.Equal(t, 0, r.code, r.stderr)
	o.requireGone("c1", pid1)

	// c2: stdout, stderr and the exit status, from a restored VM; and
	// the phase marks of each of its kiln processes, the guest's timings
	// among them (cmd/kiln/oci/phases.go).
	phases := filepath.Join(t.TempDir(), "phases")
	env := o.env
	o.env = append(append([]string{}, env...), oci.PhasesEnv+"="+phases)
	pid2 := o.createOK("c2", writeBundle(t, rootfs, "sh", "-c", "echo out; echo err >&2; cat /proc/sys/kernel/hostname; exit 7"))
	r = o.run("start", "c2")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 7, waitExit(t, pid2))
	out, errs := o.output("c2")
	require.Equal(t, "out\nkiln-oci\n", out)
	require.Equal(t, "err\n", errs)
	require.Equal(t, specs.StateStopped, o.state("c2").Status)
	r = o.run("delete", "c2")
	require.Equal(t, 0, r.code, r.stderr)
	o.requireGone("c2", pid2)
	o.env = env
	marks, err := oci.ReadMarks(phases)
	require.NoError(t, err)
	steps := map[string]oci.Mark{}
	for _, m := range marks {
		require.Equal(t, "c2", m.ID)
		steps[m.Step] = m
	}
	launch, exit := time.Unix(0, steps[oci.StepCreate].At), time.Unix(0, steps[oci.StepDeleted].At)
	spans, err := oci.Breakdown(marks, launch, exit)
	require.NoError(t, err, "every step marked, in order: %+v", marks)
	took := map[string]time.Duration{}
	for _, x := range spans {
		took[x.Name] = x.Took
	}
	require.Positive(t, took["mounts"], "the guest timed its mounts")
	require.Positive(t, took["guest's job"])
	require.Positive(t, steps[oci.StepStarted].Took["exec"], "the guest timed the exec")
	require.Positive(t, took["exec"])
	t.Logf("c2's phases, kiln create to delete: %v; the guest's timings: %v %v", spans, steps[oci.StepReady].Took, steps[oci.StepStarted].Took)

	// c3: running, deleted: refused without --force.
	pid3 := o.createOK("c3", b1)
	r = o.run("start", "c3")
	require.Equal(t, 0, r.code, r.stderr)
	r = o.run("ps", "--format", "json", "c3")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "["+strconv.Itoa(pid3)+"]\n", r.stdout)
	r = o.run("delete", "c3")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "not stopped")
	r = o.run("delete", "--force", "c3")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 128+int(syscall.SIGKILL), waitExit(t, pid3))
	o.requireGone("c3", pid3)

	// c4: the guest cannot set it up: create fails with the guest's
	// words, and leaves no process and no state.
	create = o.create("c4", writeBundle(t, rootfs, "no-such-command"))
	err = create.Run()
	_, errs = o.output("c4")
	require.Error(t, err)
	require.Contains(t, errs, "executable file not found")
	require.Equal(t, 1, strings.Count(errs, "\n"), "one line: %q", errs)
	o.requireGone("c4", 0)
	require.NoFileExists(t, o.pidFile("c4"))
	entries, err := os.ReadDir(o.root)
	require.NoError(t, err)
	require.Empty(t, entries)
}

// TestOCIRootfsLinksStayInside gives the guest's init an image whose
// links point out of it (absolute and with ".."), and mount destinations
// through them: every mount must land inside the container's root, where
// the container sees it, never in the guest's own tree.
func TestOCIRootfsLinksStayInside(t *testing.T) {
	t.Parallel()
	shared := ociGuest(t)
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "bbin"), 0o755))
	for _, d := range []string{"proc", "dev", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	bb, err := os.ReadFile(filepath.Join(shared, "bbin", "bb"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "bbin", "bb"), bb, 0o755))
	for _, tool := range []string{"sh", "cat", "ls"} {
		require.NoError(t, os.Symlink("bb", filepath.Join(root, "bbin", tool)))
	}
	// In the guest, /kiln holds the container's root and the shares, and
	// /tmp is init's own: links that would reach them from a walk that
	// left the root.
	require.NoError(t, os.Symlink("/kiln", filepath.Join(root, "abs")))
	require.NoError(t, os.Symlink("../../../../tmp", filepath.Join(root, "up")))
	vol := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(vol, "marker"), []byte("marker\n"), 0o644))

	b := writeBundle(t, root, "sh", "-c", "cat /kiln/shares/m/marker /tmp/u/marker; ls /kiln")
	data, err := os.ReadFile(filepath.Join(b, "config.json"))
	require.NoError(t, err)
	var spec specs.Spec
	require.NoError(t, json.Unmarshal(data, &spec))
	spec.Root.Readonly = false
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/abs/shares/m", Type: "bind", Source: vol, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/up/u", Type: "bind", Source: vol, Options: []string{"rbind", "ro"}},
	)
	data, err = json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(b, "config.json"), data, 0o644))

	o := newOCIRuntime(t, "") // the default warm cache, the podman tests' too
	pid := o.createOK("c1", b)
	r := o.run("start", "c1")
	require.Equal(t, 0, r.code, r.stderr)
	code := waitExit(t, pid)
	out, errs := o.output("c1")
	require.Equal(t, 0, code, "stdout %q stderr %q", out, errs)
	// Both mounts are in the container, at the links' targets taken
	// inside its root: /kiln/shares/m and /tmp/u.
	require.Equal(t, "marker\nmarker\nshares\n", out)
	// On the host, the image has the mount points the guest made, inside
	// it.
	require.DirExists(t, filepath.Join(root, "kiln", "shares", "m"))
	r = o.run("delete", "c1")
	require.Equal(t, 0, r.code, r.stderr)
}

// TestOCISignals sends signals at every moment of a container's life: no
// signal is lost, whenever it comes (oci.Process). Right after start the
// guest has not exec'd the process yet (on a kvm-pvm host that takes
// seconds): the signal is held until it exists. Before start, a signal
// that ends a process ends the container with that death's status. After
// the process exited, kill says the container is not running.
func TestOCISignals(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	o := newOCIRuntime(t, "")
	sleeper := writeBundle(t, rootfs, "sleep", "1000")

	t.Run("right after start", func(t *testing.T) {
		pid := o.createOK("s1", sleeper)
		r := o.run("start", "s1")
		require.Equal(t, 0, r.code, r.stderr)
		r = o.run("kill", "s1", "TERM")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, 128+int(syscall.SIGTERM), waitExit(t, pid))
		require.Equal(t, 0, o.run("delete", "s1").code)
		o.requireGone("s1", pid)
	})

	t.Run("all right after start", func(t *testing.T) {
		pid := o.createOK("s2", sleeper)
		r := o.run("start", "s2")
		require.Equal(t, 0, r.code, r.stderr)
		r = o.run("kill", "--all", "s2", "USR1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, 128+int(syscall.SIGUSR1), waitExit(t, pid))
		require.Equal(t, 0, o.run("delete", "s2").code)
	})

	t.Run("between create and start", func(t *testing.T) {
		pid := o.createOK("s3", sleeper)
		r := o.run("kill", "s3", "15")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, 128+int(syscall.SIGTERM), waitExit(t, pid), "the created container ended as SIGTERM ends a process")
		require.Equal(t, specs.StateStopped, o.state("s3").Status)
		r = o.run("start", "s3")
		require.Equal(t, 1, r.code, "a stopped container cannot start: %s", r.stderr)
		require.Contains(t, r.stderr, "stopped")
		require.Equal(t, 0, o.run("delete", "s3").code)
		o.requireGone("s3", pid)
	})

	t.Run("after the exit", func(t *testing.T) {
		pid := o.createOK("s4", writeBundle(t, rootfs, "true"))
		r := o.run("start", "s4")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, 0, waitExit(t, pid))
		r = o.run("kill", "s4", "TERM")
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "not running")
		require.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line: %q", r.stderr)
		require.Equal(t, 0, o.run("delete", "s4").code)
	})
}
