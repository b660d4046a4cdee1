package main

// Tests of kiln run --share with real guests: files both ways, a
// read-only share, escapes that must fail, two shares at once, a large
// file, thousands of files, and the system calls real work makes
// (guest/fstest).

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// shareTree makes a directory to share, a marker file beside it that the
// guest must never reach, and links inside it that point at the marker.
func shareTree(t *testing.T) (outer, shared, marker string) {
	t.Helper()
	outer = t.TempDir()
	shared = filepath.Join(outer, "shared")
	require.NoError(t, os.MkdirAll(shared, 0o755))
	marker = filepath.Join(outer, "marker")
	require.NoError(t, os.WriteFile(marker, []byte("outside the share\n"), 0o644))
	require.NoError(t, os.Symlink("../marker", filepath.Join(shared, "rel-escape")))
	require.NoError(t, os.Symlink(marker, filepath.Join(shared, "abs-escape")))
	require.NoError(t, os.Symlink(outer, filepath.Join(shared, "dir-escape")))
	return outer, shared, marker
}

// markerUntouched checks the marker has the content and times it had.
func markerUntouched(t *testing.T, marker string, before unix.Stat_t) {
	t.Helper()
	b, err := os.ReadFile(marker)
	require.NoError(t, err)
	require.Equal(t, "outside the share\n", string(b))
	var after unix.Stat_t
	require.NoError(t, unix.Stat(marker, &after))
	require.Equal(t, before.Mtim, after.Mtim, "the marker outside the share was written")
	require.Equal(t, before.Ctim, after.Ctim, "the marker outside the share was changed")
}

// TestGuestShares: one VM with a read-write and a read-only share.
func TestGuestShares(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	_, rw, marker := shareTree(t)
	var markerStat unix.Stat_t
	require.NoError(t, unix.Stat(marker, &markerStat))
	ro := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(rw, "hello.txt"), []byte("hello from the host\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ro, "readme"), []byte("read me\n"), 0o644))
	// 16 MiB: dozens of 500 KB reads and writes (msize), each a 9P message; on
	// kvm-pvm a copy through 9P runs at about 0.25 MB/s (guest kernel
	// work, emulated), so 64 MiB alone took four minutes.
	big := make([]byte, 16<<20)
	_, err := rand.Read(big)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(rw, "big"), big, 0o644))
	many := filepath.Join(ro, "many")
	require.NoError(t, os.MkdirAll(many, 0o755))
	for n := 0; n < 3000; n++ {
		require.NoError(t, os.WriteFile(filepath.Join(many, fmt.Sprintf("f%04d", n)), nil, 0o644))
	}

	script := strings.Join([]string{
		"cat /src/hello.txt",
		"echo written by the guest > /src/from-guest.txt",
		"cat /docs/readme",
		"if echo x > /docs/nope 2>/dev/null; then echo RO-WRITTEN; else echo ro-refused; fi",
		"if rm /docs/readme 2>/dev/null; then echo RO-REMOVED; else echo ro-remove-refused; fi",
		"for l in rel-escape abs-escape dir-escape/marker; do if cat /src/$l 2>/dev/null; then echo ESCAPED-$l; else echo refused-$l; fi; done",
		"if cat /src/../marker 2>/dev/null; then echo ESCAPED-dotdot; else echo refused-dotdot; fi",
		"dd if=/src/big of=/src/big.copy bs=1M 2>/dev/null",
		"fstest count /docs/many",
		"fstest /src/work 20",
	}, "\n")
	// A guest's file system calls run kernel code, which a software KVM
	// emulates: this VM does more of them than a boot, so it gets longer.
	r := runEnvDeadline(t, nil, 25*time.Minute, "", kilnBinary, "run", "--kernel", k, "--initrd", i, "--memory", "256M",
		"--share", rw+":/src", "--share", ro+":/docs,ro", "--", "sh", "-c", script)
	logConsole(t, r)
	require.Equal(t, 0, r.code, r.stderr)
	out := r.stdout
	require.Contains(t, out, "hello from the host\n")
	require.Contains(t, out, "read me\n")
	require.Contains(t, out, "ro-refused\n")
	require.Contains(t, out, "ro-remove-refused\n")
	for _, l := range []string{"rel-escape", "abs-escape", "dir-escape/marker", "dotdot"} {
		require.Contains(t, out, "refused-"+l+"\n")
	}
	require.NotContains(t, out, "ESCAPED")
	require.NotContains(t, out, "outside the share")
	require.Regexp(t, `(?m)^\s*3000$`, out, "every file of a big directory listed")
	require.NotContains(t, out, "FAIL ")
	for _, c := range []string{"write and fsync", "rename", "symlink", "hard link", "chmod", "chown", "unicode name", "255-byte name", "mmap shared", "truncate", "many files"} {
		require.Contains(t, out, "ok "+c+"\n")
	}

	// What the guest wrote is on the host.
	b, err := os.ReadFile(filepath.Join(rw, "from-guest.txt"))
	require.NoError(t, err)
	require.Equal(t, "written by the guest\n", string(b))
	copied, err := os.ReadFile(filepath.Join(rw, "big.copy"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, copied), "16 MiB through the guest, byte for byte")
	b, err = os.ReadFile(filepath.Join(rw, "work", "synced.txt"))
	require.NoError(t, err)
	require.Equal(t, "flushed by the guest\n", string(b))
	var st unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join(rw, "work", "owned.txt"), &st))
	if os.Geteuid() == 0 {
		require.EqualValues(t, 1000, st.Uid, "chown as root reaches the host")
	}
	require.NoError(t, unix.Stat(filepath.Join(rw, "work", "mode.txt"), &st))
	require.EqualValues(t, 0o600, st.Mode&0o777)
	target, err := os.Readlink(filepath.Join(rw, "work", "link"))
	require.NoError(t, err)
	require.Equal(t, "after.txt", target)
	_, err = os.Stat(filepath.Join(rw, "work", "héllo-✓-日本.txt"))
	require.NoError(t, err)
	mapped, err := os.ReadFile(filepath.Join(rw, "work", "mapped.bin"))
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte("kiln"), 2048), mapped)

	// Nothing reached the read-only share or the marker.
	_, err = os.Stat(filepath.Join(ro, "nope"))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(ro, "readme"))
	require.NoError(t, err)
	markerUntouched(t, marker, markerStat)
}

// TestShareErrors: bad --share values and directories give one line and
// their exit codes, without booting.
func TestShareErrors(t *testing.T) {
	k, i := guestFiles(t)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	dir := t.TempDir()
	for _, c := range []struct {
		share []string
		code  int
		msg   string
	}{
		{[]string{"/no/such/dir"}, ExitNoInput, "no such file"},
		{[]string{file}, ExitNoInput, "not a directory"},
		{[]string{dir + ",bogus"}, ExitUsage, "unknown option"},
		{[]string{dir + ":relative"}, ExitUsage, "absolute path"},
		{[]string{dir + ":/a,tag=x", dir + ":/b,tag=x"}, ExitUsage, "two shares have the tag"},
	} {
		args := []string{"run", "--kernel", k, "--initrd", i}
		for _, s := range c.share {
			args = append(args, "--share", s)
		}
		start := time.Now()
		r := kiln(t, "", append(args, "--", "true")...)
		require.Equal(t, c.code, r.code, "%q: %s", c.share, r.stderr)
		require.Contains(t, r.stderr, c.msg)
		require.Len(t, strings.Split(strings.TrimSpace(r.stderr), "\n"), 1+strings.Count(r.stderr, "see kiln run --help"), r.stderr)
		require.Less(t, time.Since(start), 30*time.Second, "refused before booting")
	}
}
