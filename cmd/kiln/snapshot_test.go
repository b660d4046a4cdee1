package main

// Tests of kiln snapshot, kiln run --restore and kiln run --warm with
// real guests.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/machine"
)

// snapshotOnce takes one snapshot of the default guest for the tests that
// restore it, the first time one asks.
var snapshotOnce struct {
	sync.Once
	dir    string
	result run
}

func sharedSnapshot(t *testing.T) string {
	t.Helper()
	k, i := guestFiles(t)
	snapshotOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kiln-snapshot-")
		require.NoError(t, err)
		snapshotOnce.dir = filepath.Join(dir, "snap")
		snapshotOnce.result = kiln(t, "", "snapshot", "--out", snapshotOnce.dir, "--kernel", k, "--initrd", i)
	})
	r := snapshotOnce.result
	if r.code != 0 {
		t.Fatalf("kiln snapshot failed with %d:\n%s", r.code, r.stderr)
	}
	return snapshotOnce.dir
}

// TestSnapshotFiles: kiln snapshot writes the state and a sparse memory
// file of the guest's size, and says where the time went.
func TestSnapshotFiles(t *testing.T) {
	dir := sharedSnapshot(t)
	r := snapshotOnce.result
	require.Regexp(t, `booted to a ready init in [0-9.]+ (s|ms)`, r.stderr)
	require.Regexp(t, `snapshot .*: 128\.0 MiB of memory \([0-9.]+ MiB on disk\)`, r.stderr)

	s, err := machine.ReadSnapshot(dir)
	require.NoError(t, err)
	require.Equal(t, 1, s.Config.CPUs)
	require.EqualValues(t, 128<<20, s.MemSize)
	require.Len(t, s.VCPUs, 1)
	require.NotEmpty(t, s.VCPUs[0].MSRs, "every MSR KVM lists")
	require.True(t, s.Signal.Ready, "taken while init waited for its job")
	require.Len(t, s.Virtio, 1)
	require.Equal(t, "virtio-rng", s.Virtio[0].Name)
	require.True(t, s.Virtio[0].State.Active, "the guest's driver had started the entropy device")

	var st unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join(dir, machine.MemoryFile), &st))
	require.EqualValues(t, 128<<20, st.Size)
	require.Less(t, st.Blocks*512, st.Size, "pages the guest never touched are holes")
}

// TestRestoreRunsCommands: a restored guest runs the command it is given,
// with its exit status, and the snapshot stays as it was.
func TestRestoreRunsCommands(t *testing.T) {
	dir := sharedSnapshot(t)
	before, err := os.ReadFile(filepath.Join(dir, machine.StateFile))
	require.NoError(t, err)

	r := kiln(t, "", "run", "--restore", dir, "--", "echo", "hello", "from", "a", "clone")
	logConsole(t, r)
	require.Equal(t, 0, r.code)
	require.Equal(t, "hello from a clone\n", r.stdout)

	r = kiln(t, "", "run", "--restore", dir, "--boot-time", "--", "sh", "-c", "echo out; exit 3")
	logConsole(t, r)
	require.Equal(t, 3, r.code)
	require.Equal(t, "out\n", r.stdout)
	require.Regexp(t, `boot time \(launch to guest user space\): [0-9.]+ s`, r.stderr)

	// The shell reads a script from piped stdin, as after a cold boot.
	r = kiln(t, "echo from-the-shell\nexit 5\n", "run", "--restore", dir)
	logConsole(t, r)
	require.Contains(t, r.stdout, "from-the-shell")
	require.Equal(t, 5, r.code)

	after, err := os.ReadFile(filepath.Join(dir, machine.StateFile))
	require.NoError(t, err)
	require.Equal(t, before, after, "restoring never changes the snapshot")
}

// TestClonesAreDistinct: two VMs restored from one snapshot at once draw
// different random numbers, and both read the host's time, not the
// snapshot's.
func TestClonesAreDistinct(t *testing.T) {
	dir := sharedSnapshot(t)
	script := "cat /proc/sys/kernel/random/uuid; date -u '+%Y %m %d %H %M'"
	var wg sync.WaitGroup
	runs := make([]run, 2)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = kiln(t, "", "run", "--restore", dir, "--", "sh", "-c", script)
		}()
	}
	wg.Wait()
	var uuids []string
	for _, r := range runs {
		logConsole(t, r)
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 2, r.stdout)
		require.Regexp(t, `^[0-9a-f-]{36}$`, lines[0])
		uuids = append(uuids, lines[0])
		guest, err := time.Parse("2006 01 02 15 04", lines[1])
		require.NoError(t, err, lines[1])
		require.WithinDuration(t, time.Now().UTC(), guest, 5*time.Minute, "the guest's clock is the host's")
	}
	require.NotEqual(t, uuids[0], uuids[1], "clones must not share their random numbers")
}

// TestWarmStart: the first --warm run takes the snapshot and the second
// uses it; a corrupt snapshot is taken again, never used.
func TestWarmStart(t *testing.T) {
	k, i := guestFiles(t)
	cache := t.TempDir()
	warm := func(args ...string) run {
		t.Helper()
		return runEnv(t, []string{"KILN_CACHE=" + cache}, "", kilnBinary,
			append([]string{"run", "--warm", "--kernel", k, "--initrd", i}, args...)...)
	}
	r := warm("--", "echo", "first")
	logConsole(t, r)
	require.Equal(t, 0, r.code)
	require.Equal(t, "first\n", r.stdout)
	require.Contains(t, r.stderr, "no warm snapshot of this VM yet")

	r = warm("--", "sh", "-c", "echo second; exit 4")
	logConsole(t, r)
	require.Equal(t, 4, r.code)
	require.Equal(t, "second\n", r.stdout)
	require.NotContains(t, r.stderr, "no warm snapshot", "the cached snapshot was used")

	// Another memory size is another VM: another snapshot.
	snaps, err := filepath.Glob(filepath.Join(cache, "snapshots", "*", machine.StateFile))
	require.NoError(t, err)
	require.Len(t, snaps, 1)

	// Corrupt it: the next run says so and takes it again.
	require.NoError(t, os.WriteFile(snaps[0], []byte("{not json"), 0o644))
	r = warm("--", "echo", "third")
	logConsole(t, r)
	require.Equal(t, 0, r.code)
	require.Equal(t, "third\n", r.stdout)
	require.Regexp(t, regexp.MustCompile(`warm snapshot .*corrupt.*taking it again`), r.stderr)
}

// TestSnapshotRefusals: what a snapshot cannot hold is refused before
// anything boots, with one line and a distinct exit code.
func TestSnapshotRefusals(t *testing.T) {
	k, i := guestFiles(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"snapshot", "--kernel", k, "--initrd", i}, ExitUsage, "needs --out DIR"},
		{[]string{"snapshot", "--out", dir + "/s", "--kernel", k, "--initrd", i, "--", "true"}, ExitUsage, "before any command runs"},
		{[]string{"snapshot", "--out", dir + "/s", "--kernel", k, "--initrd", i, "--net", "tap=kiln-none"}, ExitBadInput, "network device cannot be snapshotted"},
		{[]string{"run", "--restore", dir + "/missing", "--", "true"}, ExitNoInput, "no such file"},
		{[]string{"run", "--restore", dir, "--memory", "1G", "--", "true"}, ExitUsage, "--memory is fixed by the snapshot"},
		{[]string{"run", "--restore", dir, "--warm", "--", "true"}, ExitUsage, "give one"},
	} {
		r := kiln(t, "", c.args...)
		require.Equal(t, c.code, r.code, "%q: %s", c.args, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		require.Contains(t, r.stderr, c.msg)
		require.True(t, strings.HasPrefix(lines[0], "kiln: "), r.stderr)
		require.NotContains(t, r.stderr, "goroutine")
	}
	// A directory that is not a snapshot.
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.MkdirAll(bad, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bad, machine.StateFile), []byte(`{"kiln_snapshot":99}`), 0o644))
	r := kiln(t, "", "run", "--restore", bad, "--", "true")
	require.Equal(t, ExitBadInput, r.code, r.stderr)
	require.Contains(t, r.stderr, "format 99")
}
