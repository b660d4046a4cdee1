package main

// Tests of ready-app snapshots (kiln snapshot --ready-port, --ready-file,
// --ready-after) with real guests.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/machine"
)

// readySnapshot takes a ready-app snapshot into a new directory and
// returns it, with kiln snapshot's stderr; wrap runs kiln (ip netns exec
// NS), or nil.
func readySnapshot(t *testing.T, wrap []string, args ...string) (string, string) {
	t.Helper()
	k, i := guestFiles(t)
	snap := filepath.Join(t.TempDir(), "snap")
	full := append([]string{"snapshot", "--out", snap, "--kernel", k, "--initrd", i}, args...)
	var r run
	if wrap != nil {
		r = runCommand(t, "", wrap[0], append(append(wrap[1:], kilnBinary), full...)...)
	} else {
		r = kiln(t, "", full...)
	}
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "kiln run --restore "+snap+" resumes it")
	s, err := machine.ReadSnapshot(snap)
	require.NoError(t, err)
	require.NotNil(t, s.App, "the snapshot records its app")
	return snap, r.stderr
}

// randomAnswer is httpd's GET /random.
type randomAnswer struct {
	Random string `json:"random"`
	Addr   string `json:"addr"`
}

// TestReadyPortSnapshot: httpd snapshotted once it listens on its port,
// then restored twice at once, each clone on a tap, MAC and address of
// its own: both answer from the host, each with random bytes of its own
// drawn after the restore, on its own address. A restore with a command
// of its own is refused.
func TestReadyPortSnapshot(t *testing.T) {
	mustBeRootForNet(t)
	snapNS := tapNetns(t, "rsnap", 21)
	snap, stderr := readySnapshot(t, []string{"ip", "netns", "exec", snapNS},
		"--net", "tap=kt0", "--ready-port", "8080", "--", "httpd", "-addr", ":8080")
	require.Contains(t, stderr, "was ready (port 8080 listening)")

	r := kiln(t, "", "run", "--restore", snap, "--net", "tap=kt0", "--", "true")
	require.Equal(t, ExitUsage, r.code, r.stderr)
	require.Contains(t, r.stderr, "holds a running app (httpd -addr :8080)")

	type clone struct {
		ns, ip, mac string
		cmd         *exec.Cmd
		out         strings.Builder
	}
	clones := []*clone{{ip: "10.0.22.2", mac: "02:00:00:00:16:02"}, {ip: "10.0.23.2", mac: "02:00:00:00:17:02"}}
	for n, c := range clones {
		c.ns = tapNetns(t, fmt.Sprintf("rclone%d", n), 22+n)
	}
	start := time.Now()
	for n, c := range clones {
		c.cmd = exec.Command("ip", "netns", "exec", c.ns, kilnBinary, "run", "--restore", snap,
			"--net", fmt.Sprintf("tap=kt0,mac=%s,ip=%s/24,gw=10.0.%d.1", c.mac, c.ip, 22+n))
		c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
		require.NoError(t, c.cmd.Start())
		t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	}
	var answers []randomAnswer
	for _, c := range clones {
		took, body := waitHTTP(t, c.ns, "http://"+c.ip+":8080/random", start)
		t.Logf("clone in %s: both restores started to the first HTTP 200 on %s: %.2f s", c.ns, c.ip, took.Seconds())
		var a randomAnswer
		require.NoError(t, json.Unmarshal([]byte(body), &a), body)
		require.Len(t, a.Random, 32, body)
		require.Equal(t, c.ip+":8080", a.Addr, "the clone answers on its own address")
		require.Contains(t, ipOut(t, "-n", c.ns, "neigh", "show", c.ip), c.mac, "the clone has the MAC given at its restore")
		answers = append(answers, a)
	}
	require.NotEqual(t, answers[0].Random, answers[1].Random, "each clone's random bytes are its own")
	for _, c := range clones {
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, c := range clones {
		err := c.cmd.Wait()
		require.Equal(t, ExitInterrupted, c.cmd.ProcessState.ExitCode(), "interrupted: %v\n%s", err, c.out.String())
	}
}

// TestReadyFile: a shell snapshotted once it has written a file; the
// restored VM resumes it where it was (what it printed before the
// snapshot is not printed again), its output is kiln's stdout and its
// exit status kiln's; the guest's clock reads the host's time.
func TestReadyFile(t *testing.T) {
	snap, stderr := readySnapshot(t, nil, "--ready-file", "/tmp/ready", "--",
		"sh", "-c", "echo before; echo x > /tmp/ready; sleep 5; echo after; cat /proc/sys/kernel/random/uuid; date -u +%Y-%m-%dT%H:%M:%SZ; exit 7")
	require.Contains(t, stderr, "before", "the app's console during the snapshot is kiln snapshot's stderr")
	require.Contains(t, stderr, "was ready (/tmp/ready written)")
	var uuids []string
	for n := range 2 {
		if n == 1 {
			// Long enough that a clock left at the snapshot's time
			// would read before this restore began.
			time.Sleep(10 * time.Second)
		}
		began := time.Now().UTC().Truncate(time.Second)
		r := kiln(t, "", "run", "--restore", snap)
		logConsole(t, r)
		require.Equal(t, 7, r.code, "the app's exit status: %s", r.stderr)
		require.NotContains(t, r.stdout, "before")
		lines := strings.Fields(r.stdout)
		require.GreaterOrEqual(t, len(lines), 3, r.stdout)
		require.Equal(t, "after", lines[0], r.stdout)
		uuids = append(uuids, lines[1])
		guestNow, err := time.Parse(time.RFC3339, lines[2])
		require.NoError(t, err, r.stdout)
		require.False(t, guestNow.Before(began), "the restored guest's clock (%v) is the host's, not the snapshot's (the restore began at %v)", guestNow, began)
		require.False(t, guestNow.After(time.Now().Add(2*time.Second)), "the guest's clock %v is ahead of the host's", guestNow)
	}
	require.NotEqual(t, uuids[0], uuids[1], "each restore draws its own random numbers")
}

// TestReadyAfter: a snapshot taken a time after its app started; the
// restored app goes on with the rest of its sleep.
func TestReadyAfter(t *testing.T) {
	snap, stderr := readySnapshot(t, nil, "--ready-after", "3s", "--", "sh", "-c", "sleep 8; echo slept; exit 5")
	require.Contains(t, stderr, "was ready (3s passed)")
	r := kiln(t, "", "run", "--restore", snap)
	logConsole(t, r)
	require.Equal(t, 5, r.code, r.stderr)
	require.Equal(t, "slept", strings.TrimSpace(r.stdout))
}

// TestReadyNeverReady: an app that never becomes ready fails kiln
// snapshot after --ready-timeout with one line and exit 75, and leaves
// no snapshot, no temporary directory and no process behind; so does an
// app that exits before it is ready.
func TestReadyNeverReady(t *testing.T) {
	k, i := guestFiles(t)
	for _, c := range []struct {
		name string
		args []string
		line string
	}{
		{"timeout", []string{"--ready-port", "9999", "--ready-timeout", "20s", "--", "sleep", "600"},
			"kiln: snapshot: the app did not become ready: port 9999 not listening after 20s"},
		{"exits first", []string{"--ready-file", "/tmp/never", "--", "sh", "-c", "exit 3"},
			"kiln: snapshot: the app did not become ready: sh exited with status 3, /tmp/never not written"},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			snap := filepath.Join(parent, "snap")
			start := time.Now()
			r := kiln(t, "", append([]string{"snapshot", "--out", snap, "--kernel", k, "--initrd", i}, c.args...)...)
			require.Equal(t, ExitNotReady, r.code, r.stderr)
			var kilnLines []string
			for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
				if strings.HasPrefix(l, "kiln: snapshot: ") {
					kilnLines = append(kilnLines, l)
				}
			}
			require.Equal(t, []string{c.line}, kilnLines, r.stderr)
			require.NotContains(t, r.stderr, "goroutine")
			entries, err := os.ReadDir(parent)
			require.NoError(t, err)
			require.Empty(t, entries, "nothing left behind in %s", parent)
			out, _ := exec.Command("pgrep", "-f", snap).Output()
			require.Empty(t, strings.TrimSpace(string(out)), "no process left behind")
			t.Logf("failed after %.1f s", time.Since(start).Seconds())
		})
	}
}

// TestReadyRefusals: ready conditions kiln snapshot cannot wait for are
// refused before anything boots, with one line and exit 64.
func TestReadyRefusals(t *testing.T) {
	k, i := guestFiles(t)
	dir := t.TempDir()
	base := []string{"snapshot", "--out", dir + "/s", "--kernel", k, "--initrd", i}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--ready-port", "8080"}, "--ready-port: a ready-app snapshot needs the app's command after --"},
		{[]string{"--ready-port", "8080", "--ready-file", "/x", "--", "true"}, "give one of a port, a file and a time (2 given)"},
		{[]string{"--ready-port", "70000", "--", "true"}, "port 70000 is out of range"},
		{[]string{"--ready-file", "rel", "--", "true"}, `"rel" is not an absolute path`},
		{[]string{"--ready-after", "10s", "--ready-timeout", "5s", "--", "true"}, "--ready-timeout 5s must be longer than --ready-after 10s"},
		{[]string{"--", "true"}, "unless it waits for the command to be ready"},
	} {
		r := kiln(t, "", append(append([]string{}, base...), c.args...)...)
		require.Equal(t, ExitUsage, r.code, "%q: %s", c.args, r.stderr)
		require.Contains(t, r.stderr, c.msg)
		require.True(t, strings.HasPrefix(r.stderr, "kiln: "), r.stderr)
		require.NotContains(t, r.stderr, "booting")
	}
}

// TestReadyShare: an app that works in a share (its current directory
// there, a log file its shell holds open for appending) is snapshotted and restored
// onto a copy of the directory: the fids its kernel held are opened again
// on the copy by their paths, so the app appends to the copy's log and
// reads, from its current directory, a file written there after the
// snapshot. An app that holds open a file it removed from the share
// cannot be snapshotted: one line names the file, and nothing is left.
func TestReadyShare(t *testing.T) {
	dir := t.TempDir()
	snap, stderr := readySnapshot(t, nil, "--share", dir+":/mnt/d", "--ready-file", "/tmp/ready", "--",
		"sh", "-c", "cd /mnt/d; { echo before; echo x > /tmp/ready; sleep 4; echo after; } >> log; cat note; exit 3")
	require.Contains(t, stderr, "was ready (/tmp/ready written)")

	copyDir := t.TempDir()
	require.NoError(t, os.CopyFS(copyDir, os.DirFS(dir)))
	require.NoError(t, os.WriteFile(filepath.Join(copyDir, "note"), []byte("written after the snapshot\n"), 0o644))
	r := kiln(t, "", "run", "--restore", snap, "--share", copyDir+":/mnt/d")
	logConsole(t, r)
	require.Equal(t, 3, r.code, r.stderr)
	require.Equal(t, "written after the snapshot", strings.TrimSpace(r.stdout))
	log, err := os.ReadFile(filepath.Join(copyDir, "log"))
	require.NoError(t, err)
	require.Equal(t, "before\nafter\n", string(log), "the restored app appends to the copy's log, through the file it held open")

	k, i := guestFiles(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "snap")
	r = kiln(t, "", "snapshot", "--out", out, "--kernel", k, "--initrd", i, "--share", dir+":/mnt/d", "--ready-file", "/tmp/ready", "--",
		"sh", "-c", "{ rm /mnt/d/scratch; echo x > /tmp/ready; sleep 600; } > /mnt/d/scratch")
	require.Equal(t, ExitWrongState, r.code, r.stderr)
	var kilnLines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(l, "kiln: snapshot: ") {
			kilnLines = append(kilnLines, l)
		}
	}
	require.Len(t, kilnLines, 1, r.stderr)
	require.Contains(t, kilnLines[0], "holds /scratch open, a file it removed")
	t.Logf("refused: %s", kilnLines[0])
	require.NotContains(t, r.stderr, "goroutine")
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing left behind in %s", parent)
}
