package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// mkfsExt4 makes an ext4 image of size holding the files in files.
func mkfsExt4(t *testing.T, size string, files map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Fatalf("mkfs.ext4 is missing (Debian package e2fsprogs; make installs it): %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	require.NoError(t, os.Mkdir(src, 0o755))
	for name, data := range files {
		require.NoError(t, os.WriteFile(filepath.Join(src, name), []byte(data), 0o644))
	}
	img := filepath.Join(dir, "disk.img")
	out, err := exec.Command("truncate", "-s", size, img).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("mkfs.ext4", "-q", "-F", "-d", src, img).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return img
}

// readExt4 reads a file out of an ext4 image on the host.
func readExt4(t *testing.T, img, name string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat /"+name, img).Output()
	require.NoError(t, err)
	return string(out)
}

// TestGuestDisksAndEntropy boots once with a writable ext4 disk, a
// read-only raw disk and the entropy device: the guest reads what the host
// wrote, writes a file and syncs (the host then finds it in the image),
// fails to write the read-only disk, and reads from /dev/hwrng.
func TestGuestDisksAndEntropy(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	img := mkfsExt4(t, "32M", map[string]string{"from-host.txt": "written by the host\n"})
	ro := filepath.Join(t.TempDir(), "ro.img")
	roData := bytes.Repeat([]byte("RO"), 4096)
	require.NoError(t, os.WriteFile(ro, roData, 0o644))

	script := strings.Join([]string{
		"mkdir -p /mnt",
		"mount -t ext4 /dev/vda /mnt",
		"cat /mnt/from-host.txt",
		"echo written by the guest > /mnt/from-guest.txt",
		"sync",
		"umount /mnt",
		"if dd if=/dev/zero of=/dev/vdb bs=512 count=1; then echo RO-WRITE-ALLOWED; else echo RO-WRITE-REFUSED; fi",
		"dd if=/dev/hwrng of=/tmp/rng bs=64 count=1",
		"wc -c /tmp/rng",
		"cat /sys/class/misc/hw_random/rng_current",
	}, "; ")
	r := kiln(t, "", "run", "--kernel", k, "--initrd", i, "--disk", img, "--disk", ro+",ro", "--", "sh", "-c", script)
	logConsole(t, r)
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "written by the host\n")
	require.Contains(t, r.stdout, "RO-WRITE-REFUSED")
	require.Contains(t, r.stdout, "64 /tmp/rng")
	require.Contains(t, r.stdout, "virtio_rng")
	require.Equal(t, "written by the guest\n", readExt4(t, img, "from-guest.txt"))
	after, err := os.ReadFile(ro)
	require.NoError(t, err)
	require.Equal(t, roData, after, "the read-only image is unchanged")
}

func TestDiskErrors(t *testing.T) {
	_, i := guestFiles(t)
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd.img")
	require.NoError(t, os.WriteFile(odd, make([]byte, 1000), 0o644))
	roFile := filepath.Join(dir, "ro.img")
	require.NoError(t, os.WriteFile(roFile, make([]byte, 4096), 0o444))
	for _, c := range []struct {
		disk string
		code int
		msg  string
	}{
		{filepath.Join(dir, "missing.img"), ExitNoInput, "no such file"},
		{odd, ExitBadInput, "multiple of 512"},
		{roFile, ExitBadInput, "add ,ro"},
		{odd + ",rox", ExitUsage, "unknown option"},
	} {
		r := kiln(t, "", "run", "--kernel", filepath.Join(filepath.Dir(i), "vmlinux"), "--initrd", i, "--disk", c.disk, "--", "true")
		require.Equal(t, c.code, r.code, "%s: %s", c.disk, r.stderr)
		require.Contains(t, r.stderr, c.msg)
		require.NotContains(t, r.stderr, "goroutine")
	}
}
