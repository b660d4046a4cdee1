package main

// Crash consistency: what a guest flushed must be on the host, however
// kiln ends.

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCrashConsistency kills kiln with SIGKILL at a random moment while
// the guest appends records to a file on ext4 on a virtio disk and to a
// file on a 9p share, fsyncing each and reporting it (guest/fstest
// journal). After each kill the image's journal is replayed as the next
// mount would, `e2fsck -fn` must find the file system clean, and every
// record the guest reported synced must be on the host, on the image and
// in the share. The seed is logged: a failure can be run again with
// KILN_CRASH_SEED.
func TestCrashConsistency(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	for _, tool := range []string{"e2fsck", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (Debian package e2fsprogs; make installs it): %v", tool, err)
		}
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("KILN_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (KILN_CRASH_SEED=%d reruns it)", seed, seed)
	rnd := rand.New(rand.NewSource(seed))
	img := mkfsExt4(t, "64M", nil)
	share := t.TempDir()

	for round := 1; round <= 3; round++ {
		disk, shared := fmt.Sprintf("/mnt/journal-%d", round), fmt.Sprintf("/share/journal-%d", round)
		script := fmt.Sprintf("mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && (fstest journal %s 1000000 & fstest journal %s 1000000; wait)", disk, shared)
		// Kill after a random number of records, then a random moment.
		after, pause := 5+rnd.Intn(40), time.Duration(rnd.Intn(300))*time.Millisecond
		synced := killWhileWriting(t, k, i, img, share, script, after, pause)
		t.Logf("round %d: killed after %v; the guest had reported %d records synced on the disk, %d on the share",
			round, pause, synced[disk], synced[shared])
		require.Positive(t, synced[disk]+synced[shared], "the guest reported nothing before the kill")

		// The next mount would replay the journal; e2fsck does it here.
		out, err := exec.Command("e2fsck", "-E", "journal_only", "-y", img).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 1 {
			t.Fatalf("replaying the journal: %v: %s", err, out)
		}
		out, err = exec.Command("e2fsck", "-fn", img).CombinedOutput()
		require.NoError(t, err, "e2fsck -fn after a kill:\n%s", out)

		checkRecords(t, readExt4(t, img, strings.TrimPrefix(disk, "/mnt/")), synced[disk], "the disk")
		b, err := os.ReadFile(filepath.Join(share, strings.TrimPrefix(shared, "/share/")))
		if synced[shared] > 0 {
			require.NoError(t, err)
		}
		checkRecords(t, string(b), synced[shared], "the share")
	}
}

// killWhileWriting runs kiln with the script until the guest has reported
// after records synced, waits pause, kills kiln with SIGKILL, and returns
// the last record reported synced for each file.
func killWhileWriting(t *testing.T, kernel, initrd, img, share, script string, after int, pause time.Duration) map[string]int {
	t.Helper()
	cmd := exec.Command(kilnBinary, "run", "--kernel", kernel, "--initrd", initrd, "--disk", img,
		"--share", share+":/share", "--", "sh", "-c", script)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	var mu sync.Mutex
	synced := map[string]int{}
	reported := 0
	enough := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "synced" {
				continue
			}
			n, err := strconv.Atoi(f[2])
			if err != nil {
				continue
			}
			mu.Lock()
			synced[f[1]] = max(synced[f[1]], n)
			reported++
			if reported == after {
				close(enough)
			}
			mu.Unlock()
		}
	}()
	select {
	case <-enough:
	case <-done:
		cmd.Wait()
		t.Fatalf("kiln ended before the guest reported %d records: %s", after, stderr.String())
	case <-time.After(bootDeadline):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the guest reported no records within %v: %s", bootDeadline, stderr.String())
	}
	time.Sleep(pause)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	<-done // every line kiln printed before it died
	mu.Lock()
	defer mu.Unlock()
	return synced
}

// checkRecords checks that data holds records 1 to at least n, whole and
// in order.
func checkRecords(t *testing.T, data string, n int, where string) {
	t.Helper()
	lines := strings.Split(data, "\n")
	require.GreaterOrEqual(t, len(lines)-1, n, "%s lost records the guest had synced", where)
	for k := 1; k <= n; k++ {
		require.Equal(t, fmt.Sprintf("record %08d", k), lines[k-1], "%s: record %d", where, k)
	}
}
