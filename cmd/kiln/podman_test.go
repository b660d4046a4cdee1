package main

// podman runs containers with kiln as its OCI runtime (podman run
// --runtime KILN), on an image built here from kiln's own initramfs.
// podman keeps its storage in the test's temporary directory, and starts
// these containers with --network none; network_test.go runs them on
// podman's networks.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/cmd/kiln/bench"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// podmanUlimits are needed on this project's hosts, whose hard nofile
// limit is below podman's default (shared/notes/containers-host.md).
var podmanUlimits = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}

const podmanImage = "localhost/kiln-oci-test:latest"

// podman is podman with the test's own storage.
type podman struct {
	t    *testing.T
	base []string
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	rootfs := ociGuest(t)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("SKIPPED: podman is not installed (make installs it: scripts/deps.sh)")
	}
	dir := t.TempDir()
	p := &podman{t: t, base: []string{
		"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--cgroup-manager", "cgroupfs", "--events-backend", "file", "--log-level", "error",
	}}
	t.Cleanup(func() {
		p.run("rm", "--all", "--force")
		p.run("rmi", "--all", "--force")
	})
	tarball := filepath.Join(dir, "rootfs.tar")
	require.NoError(t, bench.TarDir(rootfs, tarball))
	r := p.run("import", "--change", "ENV PATH=/bbin:/bin", tarball, podmanImage)
	require.Equal(t, 0, r.code, "podman import: %s", r.stderr)
	return p
}

func (p *podman) run(args ...string) run {
	p.t.Helper()
	return runEnv(p.t, nil, "", "podman", append(append([]string{}, p.base...), args...)...)
}

// runKiln is podman run with kiln as the runtime.
func (p *podman) runKiln(args ...string) run {
	p.t.Helper()
	full := append([]string{"run", "--runtime", kilnBinary, "--network", "none"}, podmanUlimits...)
	return p.run(append(full, args...)...)
}

func TestPodman(t *testing.T) {
	t.Parallel()
	p := newPodman(t)

	t.Run("echo", func(t *testing.T) {
		cid := filepath.Join(t.TempDir(), "cid")
		r := p.runKiln("--rm", "--cidfile", cid, podmanImage, "echo", "hello", "from", "kiln")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "hello from kiln\n", r.stdout)
		id, err := os.ReadFile(cid)
		require.NoError(t, err)
		// --rm: podman deleted it, and kiln kept nothing.
		require.NoDirExists(t, filepath.Join("/run/kiln", strings.TrimSpace(string(id))))
		r = p.run("ps", "--all", "--quiet")
		require.Empty(t, strings.TrimSpace(r.stdout))
	})

	t.Run("exit codes", func(t *testing.T) {
		r := p.runKiln("--rm", podmanImage, "sh", "-c", "exit 3")
		require.Equal(t, 3, r.code, r.stderr)
		r = p.runKiln("--rm", podmanImage, "sh", "-c", "kill -9 $$")
		require.Equal(t, 137, r.code, "killed by SIGKILL: %s", r.stderr)
	})

	t.Run("env workdir user volume read-only", func(t *testing.T) {
		vol := t.TempDir()
		require.NoError(t, os.Chmod(vol, 0o777))
		r := p.runKiln("--rm", "-e", "A=B", "-w", "/tmp", "-u", "1000:1000", "-v", vol+":/data", "--read-only",
			podmanImage, "sh", "-c", "echo A=$A; pwd; grep ^Uid: /proc/self/status; echo written > /data/f; echo x > /x || echo read-only root; echo GODEBUG=$GODEBUG")
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 5, r.stdout)
		if kvm.IsPVM() {
			// The guest-wide GODEBUG reaches a container's process
			// (docs/pvm.md, TestGuestPVMVectorState).
			require.Contains(t, lines[4], "cpu.avx=off", "a container's process keeps off AVX under kvm-pvm")
		}
		require.Equal(t, "A=B", lines[0])
		require.Equal(t, "/tmp", lines[1])
		require.Equal(t, []string{"Uid:", "1000", "1000", "1000", "1000"}, strings.Fields(lines[2]))
		require.Equal(t, "read-only root", lines[3])
		b, err := os.ReadFile(filepath.Join(vol, "f"))
		require.NoError(t, err, "the file written in the container is on the host")
		require.Equal(t, "written\n", string(b))
		var st unix.Stat_t
		require.NoError(t, unix.Stat(filepath.Join(vol, "f"), &st))
		require.Equal(t, uint32(1000), st.Uid, "owned by the container's user")
	})

	t.Run("terminal", func(t *testing.T) {
		r := p.runKiln("--rm", "-t", podmanImage, "sh", "-c", "ls -l /proc/self/fd/0; echo TERM=$TERM")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "/dev/pts/")
		require.Contains(t, r.stdout, "TERM=xterm\r\n", "the guest's terminal turns \\n into \\r\\n")
	})

	t.Run("stop", func(t *testing.T) {
		r := p.runKiln("-d", "--name", "kiln-stop", podmanImage, "sleep", "1000")
		require.Equal(t, 0, r.code, r.stderr)
		start := time.Now()
		r = p.run("stop", "--time", "60", "kiln-stop")
		require.Equal(t, 0, r.code, r.stderr)
		t.Logf("podman stop: %.1f s", time.Since(start).Seconds())
		r = p.run("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "kiln-stop")
		require.Equal(t, 0, r.code, r.stderr)
		// 143: SIGTERM reached the process in the guest before the
		// timeout (SIGKILL of the VMM would give 137).
		require.Equal(t, "exited 143", strings.TrimSpace(r.stdout))
		r = p.run("rm", "kiln-stop")
		require.Equal(t, 0, r.code, r.stderr)
	})
}

// containerd is a containerd of the test's own (its own root, state and
// socket) with podman's test image imported, for ctr with kiln as the
// runc binary. ctr runs ctr against it.
type containerd struct {
	t    *testing.T
	dir  string // the test's directory, for its other files
	sock string
}

func newContainerd(t *testing.T, p *podman) *containerd {
	t.Helper()
	for _, bin := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (scripts/deps.sh installs containerd)", bin)
		}
	}
	dir := t.TempDir()
	c := &containerd{t: t, dir: dir, sock: filepath.Join(dir, "sock")}
	conf := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(conf, []byte("version = 2\n"), 0o600))
	ctd := exec.Command("containerd", "--config", conf, "--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"), "--address", c.sock)
	ctd.Env = append(os.Environ(), "KILN_KERNEL="+filepath.Join(filepath.Dir(kilnBinary), "vmlinux"), "KILN_INITRD="+filepath.Join(filepath.Dir(kilnBinary), "initramfs.cpio"))
	require.NoError(t, ctd.Start())
	t.Cleanup(func() { ctd.Process.Kill(); ctd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); exec.Command("ctr", "--address", c.sock, "version").Run() != nil; time.Sleep(100 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "containerd did not start")
	}
	archive := filepath.Join(dir, "image.tar")
	r := p.run("save", "--format", "docker-archive", "-o", archive, podmanImage)
	require.Equal(t, 0, r.code, r.stderr)
	r = c.ctr("image", "import", archive)
	require.Equal(t, 0, r.code, r.stderr)
	return c
}

func (c *containerd) ctr(args ...string) run {
	c.t.Helper()
	return runCommand(c.t, "", "ctr", append([]string{"--address", c.sock}, args...)...)
}
