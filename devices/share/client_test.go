package share

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// These tests drive a Server with the library's own client, over a pipe,
// and check the result on the host.

func walk(t *testing.T, from p9.File, names ...string) p9.File {
	t.Helper()
	_, f, err := from.Walk(names)
	require.NoError(t, err, "walk %v", names)
	t.Cleanup(func() { f.Close() })
	return f
}

func create(t *testing.T, dir p9.File, name string) p9.File {
	t.Helper()
	d := walk(t, dir)
	f, _, _, err := d.Create(name, p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
	require.NoError(t, err, "create %q", name)
	return f
}

func TestClientLargeFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	root, _ := newClient(t, dir, false)
	f := create(t, root, "big")
	// 8 MiB of a pattern, written and read in pieces larger than msize:
	// the client splits them into msize-sized Twrites and Treads.
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		n, err := f.WriteAt(data[off:off+1<<20], int64(off))
		require.NoError(t, err)
		require.Equal(t, 1<<20, n)
	}
	require.NoError(t, f.FSync())
	onHost, err := os.ReadFile(filepath.Join(dir, "big"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, onHost), "host sees what the guest wrote")

	g := walk(t, root, "big")
	_, _, err = g.Open(p9.ReadOnly)
	require.NoError(t, err)
	back := make([]byte, len(data))
	n, err := g.ReadAt(back, 0)
	require.NoError(t, err)
	require.Equal(t, len(data), n)
	require.True(t, bytes.Equal(data, back))
	// Reading at the end gets nothing, not an error.
	n, err = g.ReadAt(make([]byte, 10), int64(len(data)))
	require.Zero(t, n)
	_ = err
}

func TestClientNamespaceOperations(t *testing.T) {
	dir := t.TempDir()
	root, _ := newClient(t, dir, false)

	_, err := walk(t, root).Mkdir("sub", 0o750, p9.NoUID, p9.NoGID)
	require.NoError(t, err)
	st, err := os.Stat(filepath.Join(dir, "sub"))
	require.NoError(t, err)
	require.True(t, st.IsDir())
	require.EqualValues(t, 0o750, st.Mode().Perm(), "the guest's mode, not cut by kiln's umask")

	sub := walk(t, root, "sub")
	f := create(t, sub, "a")
	_, err = f.WriteAt([]byte("hello"), 0)
	require.NoError(t, err)

	// Rename across directories, then symlink and readlink.
	require.NoError(t, walk(t, root).RenameAt("sub", walk(t, root), "sub2"))
	require.NoError(t, walk(t, root, "sub2").RenameAt("a", walk(t, root), "b"))
	got, err := os.ReadFile(filepath.Join(dir, "b"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
	// The renamed file's fid still works: files are descriptors, not names.
	_, err = f.WriteAt([]byte("HELLO"), 0)
	require.NoError(t, err)
	got, _ = os.ReadFile(filepath.Join(dir, "b"))
	require.Equal(t, "HELLO", string(got))

	_, err = walk(t, root).Symlink("sub2/../b", "link", p9.NoUID, p9.NoGID)
	require.NoError(t, err)
	target, err := walk(t, root, "link").Readlink()
	require.NoError(t, err)
	require.Equal(t, "sub2/../b", target)
	onHost, err := os.Readlink(filepath.Join(dir, "link"))
	require.NoError(t, err)
	require.Equal(t, "sub2/../b", onHost)

	// A hard link within the share.
	require.NoError(t, walk(t, root).Link(walk(t, root, "b"), "b2"))
	fi, err := os.Stat(filepath.Join(dir, "b2"))
	require.NoError(t, err)
	require.EqualValues(t, 2, fi.Sys().(*syscall.Stat_t).Nlink)
	_, _, attr, err := walk(t, root, "b").GetAttr(p9.AttrMaskAll)
	require.NoError(t, err)
	require.EqualValues(t, 2, attr.NLink)

	// A FIFO; a device node is refused.
	_, err = walk(t, root).Mknod("fifo", p9.ModeNamedPipe|0o640, 0, 0, p9.NoUID, p9.NoGID)
	require.NoError(t, err)
	fi, err = os.Lstat(filepath.Join(dir, "fifo"))
	require.NoError(t, err)
	require.Equal(t, os.ModeNamedPipe, fi.Mode().Type())
	require.EqualValues(t, 0o640, fi.Mode().Perm())
	_, err = walk(t, root).Mknod("mem", p9.ModeCharacterDevice|0o600, 1, 1, p9.NoUID, p9.NoGID)
	require.ErrorIs(t, err, linux.EPERM)
	_, _, err = walk(t, root, "fifo").Open(p9.ReadOnly)
	require.Error(t, err, "kiln does not open FIFOs for the guest")

	// Unlink a file, remove an empty and a non-empty directory.
	require.NoError(t, walk(t, root).UnlinkAt("b2", 0))
	_, err = os.Lstat(filepath.Join(dir, "b2"))
	require.True(t, os.IsNotExist(err))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub2", "x"), nil, 0o644))
	require.ErrorIs(t, walk(t, root).UnlinkAt("sub2", unix.AT_REMOVEDIR), linux.ENOTEMPTY,
		"the errno passes unchanged (not EEXIST)")
	require.NoError(t, walk(t, root, "sub2").UnlinkAt("x", 0))
	require.NoError(t, walk(t, root).UnlinkAt("sub2", unix.AT_REMOVEDIR))

	// Creating an existing name fails.
	_, _, _, err = walk(t, root).Create("b", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
	require.ErrorIs(t, err, linux.EEXIST)
}

func TestClientUnicodeAndLongNames(t *testing.T) {
	dir := t.TempDir()
	root, _ := newClient(t, dir, false)
	long := strings.Repeat("é", 127) + "x" // 255 bytes
	require.Len(t, long, 255)
	for _, name := range []string{"héllo wörld ✓", "日本語のファイル", long, "emoji 🦀🚀"} {
		f := create(t, root, name)
		_, err := f.WriteAt([]byte(name), 0)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, name, string(got))
		walk(t, root, name)
	}
	_, _, _, err := walk(t, root).Create(long+"y", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
	require.ErrorIs(t, err, linux.ENAMETOOLONG)
	names := readdirAll(t, walk(t, root), 4096)
	require.Contains(t, names, long)
	require.Contains(t, names, "日本語のファイル")
}

// readdirAll lists a directory in Treaddirs of count bytes, following the
// offsets the server gives.
func readdirAll(t *testing.T, dir p9.File, count uint32) []string {
	t.Helper()
	_, _, err := dir.Open(p9.ReadOnly)
	require.NoError(t, err)
	var names []string
	off := uint64(0)
	for rounds := 0; ; rounds++ {
		require.Less(t, rounds, 100000, "readdir does not end")
		ents, err := dir.Readdir(off, count)
		require.NoError(t, err)
		if len(ents) == 0 {
			return names
		}
		for _, e := range ents {
			names = append(names, e.Name)
			off = e.Offset
		}
	}
}

func TestClientReaddirThousandsOfEntries(t *testing.T) {
	dir := t.TempDir()
	const n = 3000
	want := map[string]bool{".": true, "..": true}
	for i := range n {
		name := fmt.Sprintf("entry-%05d-%s", i, strings.Repeat("z", i%40))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
		want[name] = true
	}
	root, _ := newClient(t, dir, false)
	for _, count := range []uint32{300, 4096, 60000} {
		names := readdirAll(t, walk(t, root), count)
		require.Len(t, names, len(want), "count %d: every entry exactly once", count)
		seen := map[string]bool{}
		for _, name := range names {
			require.True(t, want[name], "unexpected %q", name)
			require.False(t, seen[name], "%q twice", name)
			seen[name] = true
		}
	}
	// Resuming from an offset in the middle gives the rest.
	d := walk(t, root)
	_, _, err := d.Open(p9.ReadOnly)
	require.NoError(t, err)
	first, err := d.Readdir(0, 2000)
	require.NoError(t, err)
	require.NotEmpty(t, first)
	mid := first[len(first)-1].Offset
	d2 := walk(t, root)
	_, _, err = d2.Open(p9.ReadOnly)
	require.NoError(t, err)
	var rest []string
	for off := mid; ; {
		ents, err := d2.Readdir(off, 8192)
		require.NoError(t, err)
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			rest = append(rest, e.Name)
			off = e.Offset
		}
	}
	require.Len(t, rest, len(want)-len(first))
}

func TestClientAttributes(t *testing.T) {
	dir := t.TempDir()
	root, _ := newClient(t, dir, false)
	f := create(t, root, "f")
	_, err := f.WriteAt(make([]byte, 5000), 0)
	require.NoError(t, err)
	g := walk(t, root, "f")

	// chmod: the sticky bit passes, setuid and setgid never do (the
	// library masks them: the guest cannot make setuid files on the host).
	require.NoError(t, g.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o5751}))
	fi, err := os.Stat(filepath.Join(dir, "f"))
	require.NoError(t, err)
	require.EqualValues(t, 0o751, fi.Mode().Perm())
	require.NotZero(t, fi.Mode()&os.ModeSticky)
	require.Zero(t, fi.Mode()&os.ModeSetuid)

	if os.Geteuid() == 0 {
		require.NoError(t, g.SetAttr(p9.SetAttrMask{UID: true, GID: true, Permissions: true},
			p9.SetAttr{UID: 1234, GID: 5678, Permissions: 0o1700}))
		fi, _ = os.Stat(filepath.Join(dir, "f"))
		st := fi.Sys().(*syscall.Stat_t)
		require.EqualValues(t, 1234, st.Uid)
		require.EqualValues(t, 5678, st.Gid)
		require.EqualValues(t, 0o700, fi.Mode().Perm())
		require.NotZero(t, fi.Mode()&os.ModeSticky, "the mode is applied after the chown")
	}

	// truncate, on a fid that is not open
	require.NoError(t, g.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{Size: 123}))
	fi, _ = os.Stat(filepath.Join(dir, "f"))
	require.EqualValues(t, 123, fi.Size())

	// utimes: given times, and "now"
	require.NoError(t, g.SetAttr(p9.SetAttrMask{ATime: true, MTime: true, ATimeNotSystemTime: true, MTimeNotSystemTime: true},
		p9.SetAttr{ATimeSeconds: 1000000000, ATimeNanoSeconds: 5, MTimeSeconds: 1234567890, MTimeNanoSeconds: 42}))
	fi, _ = os.Stat(filepath.Join(dir, "f"))
	require.Equal(t, time.Unix(1234567890, 42), fi.ModTime())
	_, _, attr, err := g.GetAttr(p9.AttrMaskAll)
	require.NoError(t, err)
	require.EqualValues(t, 1000000000, attr.ATimeSeconds)
	require.EqualValues(t, 1234567890, attr.MTimeSeconds)
	require.EqualValues(t, 42, attr.MTimeNanoSeconds)
	require.EqualValues(t, 123, attr.Size)
	require.True(t, attr.Mode.IsRegular())
	require.NoError(t, g.SetAttr(p9.SetAttrMask{MTime: true}, p9.SetAttr{}))
	fi, _ = os.Stat(filepath.Join(dir, "f"))
	require.WithinDuration(t, time.Now(), fi.ModTime(), time.Minute)

	// statfs is the host file system's.
	fs, err := root.StatFS()
	require.NoError(t, err)
	var want unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &want))
	require.EqualValues(t, want.Type, fs.Type)
	require.EqualValues(t, want.Blocks, fs.Blocks)
	require.EqualValues(t, 255, fs.NameLength)

	// fsync of an open file and an open directory.
	require.NoError(t, f.FSync())
	d := walk(t, root)
	_, _, err = d.Open(p9.ReadOnly)
	require.NoError(t, err)
	require.NoError(t, d.FSync())
}

func TestClientConcurrentRequests(t *testing.T) {
	dir := t.TempDir()
	root, _ := newClient(t, dir, false)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("c%d", i)
			d := walk(t, root)
			f, _, _, err := d.Create(name, p9.ReadWrite, 0o600, p9.NoUID, p9.NoGID)
			if !(assertNoError(t, err)) {
				return
			}
			for j := range 20 {
				_, err := f.WriteAt(bytes.Repeat([]byte{byte(i)}, 1000), int64(j*1000))
				assertNoError(t, err)
			}
			f.Close()
		}()
	}
	wg.Wait()
	for i := range 16 {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("c%d", i)))
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat([]byte{byte(i)}, 20000), got)
	}
}

func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}
