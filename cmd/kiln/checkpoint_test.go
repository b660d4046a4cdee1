package main

// Checkpoint and restore of running containers (kiln checkpoint, kiln
// restore; podman container checkpoint and restore), with real guests:
// a counter the container's shell holds in memory goes on from where it
// was in the restored VM.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

// counted is the numbers a counter wrote, in order.
func counted(t *testing.T, out string) []int {
	t.Helper()
	var n []int
	for _, f := range strings.Fields(out) {
		i, err := strconv.Atoi(f)
		require.NoError(t, err, "the counter's output: %q", out)
		n = append(n, i)
	}
	return n
}

// requireCounting checks that nums count up by one from first.
func requireCounting(t *testing.T, what string, nums []int, first int) {
	t.Helper()
	require.NotEmpty(t, nums, what)
	for i, n := range nums {
		require.Equal(t, first+i, n, "%s: %v", what, nums)
	}
}

// restore runs kiln restore of the checkpoint in image as id, detached,
// its stdio files as create's, and returns the VMM's pid.
func (o *ociRuntime) restore(id, bundle, image string) int {
	o.t.Helper()
	cmd := o.command(id, "restore", "--image-path", image, "--work-path", filepath.Dir(image),
		"--bundle", bundle, "--detach", "--pid-file", o.pidFile(id), id)
	start := time.Now()
	err := cmd.Run()
	out, errs := o.output(id)
	require.NoError(o.t, err, "restore %s: stdout %q stderr %q", id, out, errs)
	o.t.Logf("kiln restore %s: %.2f s", id, time.Since(start).Seconds())
	return o.pid(id)
}

// TestOCICheckpoint: a running counter is checkpointed (its VM ends, its
// VMM exits 0, the container is stopped), restored as another container
// that counts on from the next number, checkpointed again with
// --leave-running (it goes on counting), and that checkpoint restored
// beside it, both counting on. A checkpoint of a stopped container and a
// restore of a directory that holds none are refused with one line.
func TestOCICheckpoint(t *testing.T) {
	rootfs := ociGuest(t)
	o := newOCIRuntime(t, "")
	t.Cleanup(func() {
		for _, id := range []string{"k1", "k2", "k3"} {
			o.run("delete", "--force", id)
		}
	})
	bundle := writeBundle(t, rootfs, counter...)
	images := t.TempDir()
	count := func(id string) func() int {
		return func() int { out, _ := o.output(id); return lines(out) }
	}

	pid := o.createOK("k1", bundle)
	require.Equal(t, 0, o.run("start", "k1").code)
	waitLines(t, "k1 before the checkpoint", 3, count("k1"))
	first := filepath.Join(images, "first")
	start := time.Now()
	r := o.run("checkpoint", "--image-path", first, "--work-path", images, "k1")
	require.Equal(t, 0, r.code, r.stderr)
	t.Logf("kiln checkpoint k1: %.2f s", time.Since(start).Seconds())
	require.Equal(t, 0, waitExit(t, pid), "the checkpointed VM's VMM exits 0")
	require.Equal(t, specs.StateStopped, o.state("k1").Status)
	require.FileExists(t, filepath.Join(first, oci.InventoryFile), "podman looks for it before a restore")
	require.FileExists(t, filepath.Join(first, oci.CheckpointFile))
	log, err := os.ReadFile(filepath.Join(images, "dump.log"))
	require.NoError(t, err)
	require.Contains(t, string(log), "checkpointed k1")
	out, _ := o.output("k1")
	before := counted(t, out)
	requireCounting(t, "k1", before, 1)
	last := before[len(before)-1]
	r = o.run("checkpoint", "--image-path", filepath.Join(images, "again"), "k1")
	require.Equal(t, ExitWrongState, r.code, "a checkpoint of a stopped container: %s", r.stderr)
	require.Equal(t, 1, lines(r.stderr), r.stderr)
	require.Equal(t, 0, o.run("delete", "k1").code)

	// Restored as k2: it counts on from the number after the last.
	pid2 := o.restore("k2", bundle, first)
	require.Equal(t, specs.StateRunning, o.state("k2").Status)
	require.Equal(t, pid2, o.state("k2").Pid)
	waitLines(t, "k2 after the restore", 3, count("k2"))
	out, _ = o.output("k2")
	requireCounting(t, "k2, restored", counted(t, out), last+1)

	// --leave-running: k2 goes on, and its checkpoint restored as k3
	// counts on beside it.
	second := filepath.Join(images, "second")
	r = o.run("checkpoint", "--leave-running", "--leave-running", "--image-path", second, "k2")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, specs.StateRunning, o.state("k2").Status)
	n := lines(func() string { s, _ := o.output("k2"); return s }())
	waitLines(t, "k2 after --leave-running", n+2, count("k2"))
	pid3 := o.restore("k3", bundle, second)
	waitLines(t, "k3 after the restore", 2, count("k3"))
	out, _ = o.output("k2")
	k2 := counted(t, out)
	requireCounting(t, "k2, left running", k2, last+1)
	out, _ = o.output("k3")
	k3 := counted(t, out)
	require.Greater(t, k3[0], last+1, "k3 starts past k2's first number: %v", k3)
	require.LessOrEqual(t, k3[0], k2[len(k2)-1], "k3 starts no later than k2 is: %v %v", k3, k2)
	requireCounting(t, "k3", k3, k3[0])
	t.Logf("k1 counted %v; restored, k2 %v; k3, from k2 left running, %v", before, k2, k3)

	// An exec running: its streams are its own vsock connections, which
	// the pause would end. The checkpoint is refused with one line, and
	// the container runs on.
	execCmd := exec.Command(kilnBinary, "--root", o.root, "exec", "--detach", "--pid-file", filepath.Join(o.files, "exec.pid"), "k3", "sleep", "1000")
	execCmd.Env = append(os.Environ(), o.env...)
	require.NoError(t, execCmd.Run(), "kiln exec --detach")
	r = o.run("checkpoint", "--image-path", filepath.Join(images, "refused"), "k3")
	require.Equal(t, 1, r.code, r.stderr)
	require.Equal(t, 1, lines(r.stderr), r.stderr)
	require.Contains(t, r.stderr, "exec process(es) running")
	require.NoDirExists(t, filepath.Join(images, "refused"))
	require.Equal(t, specs.StateRunning, o.state("k3").Status)
	for _, id := range []string{"k2", "k3"} {
		require.Equal(t, 0, o.run("kill", id, "KILL").code)
	}
	waitExit(t, pid2)
	waitExit(t, pid3)

	r = o.run("restore", "--image-path", t.TempDir(), "--bundle", bundle, "--detach", "k4")
	require.Equal(t, 1, r.code, r.stderr)
	require.Equal(t, 1, lines(r.stderr), r.stderr)
	require.Contains(t, r.stderr, "holds no kiln checkpoint")
}

// TestPodmanCheckpoint: podman container checkpoint and restore with
// kiln as the runtime, on podman's network: a container that counts and
// serves HTTP is checkpointed (podman says exited), restored (running,
// counting on from where it was, serving on its address), checkpointed
// again with --leave-running --export while it goes on, and the export
// imported under a new name: a second container, its own address, the
// same count, both running.
func TestPodmanCheckpoint(t *testing.T) {
	p := newPodman(t)
	mustBeRootForNet(t)
	if _, err := exec.LookPath("criu"); err != nil {
		t.Skip("SKIPPED: criu is not installed: podman offers checkpoints only with it (make installs it: scripts/deps.sh)")
	}
	t.Cleanup(func() { p.run("rm", "--force", "kiln-ck", "kiln-ck2") })
	t.Cleanup(func() {
		// On a failure, what each container's guest said on its console
		// (kiln's state directory for it, under podman's default root).
		if !t.Failed() {
			return
		}
		for _, name := range []string{"kiln-ck", "kiln-ck2"} {
			id := strings.TrimSpace(p.run("inspect", "--format", "{{.Id}}", name).stdout)
			b, _ := os.ReadFile(filepath.Join(oci.DefaultRoot, id, "console"))
			t.Logf("%s (%s): %s; its guest's console:\n%s", name, id, p.run("inspect", "--format", "status {{.State.Status}}, exit code {{.State.ExitCode}}, error {{.State.Error}}, pid {{.State.Pid}}", name).stdout, b)
		}
	})
	script := "httpd -addr :8080 & i=0; while true; do i=$((i+1)); echo $i; sleep 1; done"
	r := p.runKilnNet("-d", "--name", "kiln-ck", podmanImage, "sh", "-c", script)
	require.Equal(t, 0, r.code, r.stderr)
	logs := func(name string) []int { return counted(t, p.run("logs", name).stdout) }
	waitLines(t, "before the checkpoint", 3, func() int { return len(logs("kiln-ck")) })

	start := time.Now()
	r = p.run("container", "checkpoint", "kiln-ck")
	require.Equal(t, 0, r.code, r.stderr)
	t.Logf("podman container checkpoint: %.2f s", time.Since(start).Seconds())
	require.Equal(t, "exited", p.inspect("kiln-ck", "{{.State.Status}}"))
	before := logs("kiln-ck")
	requireCounting(t, "before the checkpoint", before, 1)

	start = time.Now()
	r = p.run("container", "restore", "kiln-ck")
	require.Equal(t, 0, r.code, r.stderr)
	t.Logf("podman container restore: %.2f s", time.Since(start).Seconds())
	require.Equal(t, "running", p.inspect("kiln-ck", "{{.State.Status}}"))
	waitLines(t, "after the restore", len(before)+3, func() int { return len(logs("kiln-ck")) })
	requireCounting(t, "across the restore", logs("kiln-ck"), 1)
	ip := p.inspect("kiln-ck", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
	_, body := waitHTTP(t, "", "http://"+ip+":8080/random", time.Now())
	require.Contains(t, body, `"addr":"`+ip+`:8080"`, "the restored container serves on its address")

	tarball := filepath.Join(t.TempDir(), "kiln-ck.tar.gz")
	r = p.run("container", "checkpoint", "--leave-running", "--export", tarball, "kiln-ck")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "running", p.inspect("kiln-ck", "{{.State.Status}}"))
	start = time.Now()
	r = p.run("container", "restore", "--import", tarball, "--name", "kiln-ck2")
	require.Equal(t, 0, r.code, r.stderr)
	t.Logf("podman container restore --import --name: %.2f s", time.Since(start).Seconds())
	require.Equal(t, "running", p.inspect("kiln-ck2", "{{.State.Status}}"))
	ip2 := p.inspect("kiln-ck2", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
	require.NotEqual(t, ip, ip2, "the import under a new name has its own address")
	_, body = waitHTTP(t, "", "http://"+ip2+":8080/random", time.Now())
	require.Contains(t, body, `"addr":"`+ip2+`:8080"`, "the clone serves on its own address")
	n1, n2 := len(logs("kiln-ck")), len(logs("kiln-ck2"))
	waitLines(t, "the original, after the export", n1+2, func() int { return len(logs("kiln-ck")) })
	waitLines(t, "the clone", n2+2, func() int { return len(logs("kiln-ck2")) })
	one, two := logs("kiln-ck"), logs("kiln-ck2")
	requireCounting(t, "the original", one, 1)
	requireCounting(t, "the clone", two, two[0])
	t.Logf("kiln-ck counted %v; kiln-ck2, imported, %v", one, two)

}
