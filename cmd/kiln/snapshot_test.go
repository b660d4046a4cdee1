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
	require.Equal(t, 1, s.Shape.CPUs)
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
		{[]string{"snapshot", "--out", dir + "/s", "--kernel", k, "--initrd", i, "--net", "tap=kiln-none"}, ExitNoInput, "tap kiln-none does not exist"},
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

// TestRestoreDevices: a two-vCPU snapshot with a disk and a socket
// device restores with both vCPUs; after the restore the guest writes to
// its disk (the host finds it in the image), and vsock works both ways,
// behind a socket path of the restored VM's own.
func TestRestoreDevices(t *testing.T) {
	k, i := guestFiles(t)
	img := mkfsExt4(t, "32M", map[string]string{"from-host.txt": "written by the host\n"})
	dir := t.TempDir()
	snapPath := filepath.Join(dir, "v.sock")
	snap := filepath.Join(dir, "snap")
	r := kiln(t, "", "snapshot", "--out", snap, "--kernel", k, "--initrd", i, "--cpus", "2",
		"--disk", img, "--vsock", "3,"+snapPath)
	require.Equal(t, 0, r.code, r.stderr)

	// The restored VM listens on a path of its own.
	path := filepath.Join(dir, "restored.sock")
	fromGuest, fromListener := vsockHostPeers(t, path)
	script := strings.Join([]string{
		"grep -c ^processor /proc/cpuinfo",
		"mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && cat /mnt/from-host.txt",
		"echo written after the restore > /mnt/after.txt && sync && umount /mnt",
		"sh -c 'echo pong from the guest | vsockcat listen 6000' & echo ping from the guest | vsockcat connect 5000; wait",
	}, "\n")
	r = kiln(t, "", "run", "--restore", snap, "--vsock", "4,"+path, "--", "sh", "-c", script)
	logConsole(t, r)
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(r.stdout, "\n")
	require.Equal(t, "2", strings.TrimSpace(lines[0]), "both vCPUs")
	require.Contains(t, r.stdout, "written by the host\n")
	require.Contains(t, r.stdout, "pong from the host")
	require.Contains(t, r.stdout, "ping from the host")
	require.Equal(t, "written after the restore\n", readExt4(t, img, "after.txt"))
	select {
	case got := <-fromGuest:
		require.Equal(t, "ping from the guest\n", got)
	case <-time.After(10 * time.Second):
		t.Fatal("the host program never heard from the restored guest")
	}
	select {
	case got := <-fromListener:
		require.Equal(t, "pong from the guest\n", got)
	case <-time.After(10 * time.Second):
		t.Fatal("the host never reached the restored guest's listener")
	}
}

// TestCorruptSnapshots: a snapshot whose files were damaged is refused
// with one line and exit 65, and kiln snapshot --verify finds a memory
// file that changed.
func TestCorruptSnapshots(t *testing.T) {
	good := sharedSnapshot(t)
	copySnap := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "snap")
		require.NoError(t, os.MkdirAll(dir, 0o700))
		for _, f := range []string{machine.StateFile, machine.MemoryFile} {
			b, err := os.ReadFile(filepath.Join(good, f))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
		}
		return dir
	}
	r := kiln(t, "", "snapshot", "--verify", good)
	require.Equal(t, 0, r.code, r.stderr)

	truncated := copySnap(t)
	require.NoError(t, os.Truncate(filepath.Join(truncated, machine.MemoryFile), 1<<20))
	changed := copySnap(t)
	state, err := os.ReadFile(filepath.Join(changed, machine.StateFile))
	require.NoError(t, err)
	i := strings.Index(string(state), `"rip":`)
	if i < 0 {
		i = strings.Index(string(state), `"RIP":`)
	}
	require.Positive(t, i)
	state[i+7] ^= 1 // a digit of the saved RIP
	require.NoError(t, os.WriteFile(filepath.Join(changed, machine.StateFile), state, 0o600))
	for name, dir := range map[string]string{"truncated memory": truncated, "changed state": changed} {
		r := kiln(t, "", "run", "--restore", dir, "--", "true")
		require.Equal(t, ExitBadInput, r.code, "%s: %s", name, r.stderr)
		require.Len(t, strings.Split(strings.TrimSpace(r.stderr), "\n"), 1, r.stderr)
	}
	flipped := copySnap(t)
	f, err := os.OpenFile(filepath.Join(flipped, machine.MemoryFile), os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xff}, 16<<20)
	require.NoError(t, err)
	f.Close()
	r = kiln(t, "", "snapshot", "--verify", flipped)
	require.Equal(t, ExitBadInput, r.code, r.stderr)
	require.Contains(t, r.stderr, "does not match its checksum")
}
