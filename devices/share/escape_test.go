package share

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The guest must reach nothing outside the share's root. These tests build
// a tree with a marker file outside the root and every kind of way out
// inside it, try each way through the back end, and check the marker was
// neither changed nor even opened (inotify watches it and its directory).

// escapeTree is base/outside/{marker,dir/} beside base/root, whose links
// all lead outside.
type escapeTree struct {
	base, outside, root, marker string
	markerStat                  unix.Stat_t
	inotify                     int
}

func newEscapeTree(t *testing.T) *escapeTree {
	base := t.TempDir()
	e := &escapeTree{base: base, outside: filepath.Join(base, "outside"), root: filepath.Join(base, "root")}
	e.marker = filepath.Join(e.outside, "marker")
	require.NoError(t, os.MkdirAll(filepath.Join(e.outside, "dir"), 0o755))
	require.NoError(t, os.WriteFile(e.marker, []byte("secret"), 0o644))
	past := time.Unix(1e9, 0)
	require.NoError(t, os.Chtimes(e.marker, past, past))
	require.NoError(t, os.MkdirAll(filepath.Join(e.root, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.root, "file"), []byte("inside"), 0o644))
	for name, target := range map[string]string{
		"abs-link":     e.marker,
		"rel-link":     "../outside/marker",
		"dir-link":     "../outside",
		"abs-dir-link": e.outside,
		"sub/up":       "../../outside",
		"dangling":     filepath.Join(e.outside, "new"),
		"sub/dangling": "../../outside/new",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(e.root, name)))
	}
	require.NoError(t, unix.Lstat(e.marker, &e.markerStat))
	var err error
	e.inotify, err = unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	require.NoError(t, err)
	for _, p := range []string{e.outside, e.marker, filepath.Join(e.outside, "dir")} {
		_, err := unix.InotifyAddWatch(e.inotify, p, unix.IN_ALL_EVENTS)
		require.NoError(t, err)
	}
	t.Cleanup(func() { unix.Close(e.inotify) })
	return e
}

// check fails the test if anything happened outside the root.
func (e *escapeTree) check(t *testing.T) {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Read(e.inotify, buf)
	if err != unix.EAGAIN {
		t.Fatalf("something outside the root was touched: %d bytes of inotify events (%v)", n, err)
	}
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(e.marker, &st))
	require.Equal(t, e.markerStat.Mtim, st.Mtim, "marker modified")
	require.Equal(t, e.markerStat.Ctim, st.Ctim, "marker's inode changed (mode, owner, links)")
	require.Equal(t, e.markerStat.Nlink, st.Nlink)
	ents, err := os.ReadDir(e.outside)
	require.NoError(t, err)
	require.Len(t, ents, 2, "nothing created outside the root")
	_, err = os.Lstat(filepath.Join(e.outside, "new"))
	require.True(t, os.IsNotExist(err))
	// Last, the content (reading it is an event of its own: drain it).
	data, err := os.ReadFile(e.marker)
	require.NoError(t, err)
	require.Equal(t, "secret", string(data))
	for {
		if _, err := unix.Read(e.inotify, buf); err != nil {
			break
		}
	}
}

func (e *escapeTree) attach(t *testing.T, ro bool) p9.File {
	sh, err := New(e.root, ro)
	require.NoError(t, err)
	t.Cleanup(func() { sh.Close() })
	root, err := sh.Attach()
	require.NoError(t, err)
	t.Cleanup(func() { root.Close() })
	return root
}

func bwalk(t *testing.T, from p9.File, names ...string) (p9.File, error) {
	_, f, err := from.Walk(names)
	if err == nil {
		t.Cleanup(func() { f.Close() })
	}
	return f, err
}

func mustWalk(t *testing.T, from p9.File, names ...string) p9.File {
	t.Helper()
	f, err := bwalk(t, from, names...)
	require.NoError(t, err, "walk %v", names)
	return f
}

func TestEscapeByName(t *testing.T) {
	e := newEscapeTree(t)
	root := e.attach(t, false)
	for _, names := range [][]string{
		{".."}, {"..", "outside", "marker"}, {"."}, {""}, {"/"},
		{e.marker}, {"../outside/marker"}, {"sub/../.."}, {"sub", ".."},
		{"a\x00b"},
	} {
		_, err := bwalk(t, root, names...)
		require.Error(t, err, "walk %q", names)
	}
	// Symlinks to the outside, absolute and relative, are never walked
	// through: as a directory on the way, they are not directories.
	for _, names := range [][]string{
		{"dir-link", "marker"}, {"abs-dir-link", "marker"}, {"sub", "up", "marker"},
		{"dir-link", "dir"}, {"abs-link", "x"},
	} {
		_, err := bwalk(t, root, names...)
		require.ErrorIs(t, err, linux.ENOTDIR, "walk %q", names)
	}
	e.check(t)
}

func TestEscapeThroughASymlinkFid(t *testing.T) {
	e := newEscapeTree(t)
	root := e.attach(t, false)
	for _, name := range []string{"abs-link", "rel-link", "dir-link", "abs-dir-link"} {
		l := mustWalk(t, root, name)
		_, _, attr, err := l.GetAttr(p9.AttrMaskAll)
		require.NoError(t, err)
		require.True(t, attr.Mode.IsSymlink(), "%s: the fid is the link itself", name)
		target, err := l.Readlink()
		require.NoError(t, err)
		require.NotEmpty(t, target) // the guest's to resolve, in its own tree

		for _, mode := range []p9.OpenFlags{p9.ReadOnly, p9.ReadWrite, p9.WriteOnly | dotlTrunc} {
			_, _, err := mustWalk(t, root, name).Open(mode)
			require.Error(t, err, "%s: open %v", name, mode)
		}
		require.Error(t, l.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{}), "truncate through %s", name)
		require.Error(t, l.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777}), "chmod through %s", name)
		// Times and owner apply to the link itself, never its target.
		require.NoError(t, l.SetAttr(p9.SetAttrMask{MTime: true, ATime: true}, p9.SetAttr{}))
		if os.Geteuid() == 0 {
			require.NoError(t, l.SetAttr(p9.SetAttrMask{UID: true}, p9.SetAttr{UID: 4321}))
		}
		require.Error(t, l.SetXattr("user.x", []byte("y"), 0))
		_, err = l.GetXattr("user.x")
		require.Error(t, err)
		// Through the link as a directory: nothing.
		_, _, _, err = l.Create("x", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
		require.Error(t, err)
		require.Error(t, l.UnlinkAt("marker", 0))
		_, err = l.Mkdir("x", 0o755, p9.NoUID, p9.NoGID)
		require.Error(t, err)
		require.Error(t, root.RenameAt("file", l, "stolen"), "rename into %s", name)
		require.Error(t, l.RenameAt("marker", root, "stolen"), "rename out of %s", name)
		_, err = l.Readdir(0, 4096)
		require.Error(t, err)
	}
	// A hard link to a symlink links the symlink, inside the root.
	require.NoError(t, root.Link(mustWalk(t, root, "abs-link"), "hard"))
	fi, err := os.Lstat(filepath.Join(e.root, "hard"))
	require.NoError(t, err)
	require.Equal(t, os.ModeSymlink, fi.Mode().Type())
	e.check(t)
}

func TestEscapeByCreatingThroughDanglingLinks(t *testing.T) {
	e := newEscapeTree(t)
	root := e.attach(t, false)
	sub := mustWalk(t, root, "sub")
	for _, dir := range []p9.File{root, sub} {
		_, _, _, err := mustWalk(t, dir).Create("dangling", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
		require.ErrorIs(t, err, linux.EEXIST, "O_EXCL|O_NOFOLLOW: never created through the link")
		_, err = dir.Mkdir("dangling", 0o755, p9.NoUID, p9.NoGID)
		require.ErrorIs(t, err, linux.EEXIST)
		_, err = dir.Mknod("dangling", p9.ModeNamedPipe|0o644, 0, 0, p9.NoUID, p9.NoGID)
		require.ErrorIs(t, err, linux.EEXIST)
		_, err = dir.Symlink("x", "dangling", p9.NoUID, p9.NoGID)
		require.ErrorIs(t, err, linux.EEXIST)
	}
	for _, name := range []string{"../outside/new", e.outside + "/new", "a/b", "..", "."} {
		_, _, _, err := mustWalk(t, root).Create(name, p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
		require.Error(t, err, "create %q", name)
		_, err = root.Mkdir(name, 0o755, p9.NoUID, p9.NoGID)
		require.Error(t, err, "mkdir %q", name)
		_, err = root.Symlink("x", name, p9.NoUID, p9.NoGID)
		require.Error(t, err, "symlink %q", name)
		require.Error(t, root.Link(mustWalk(t, root, "file"), name), "link %q", name)
		require.Error(t, root.RenameAt("file", root, name), "rename to %q", name)
		require.Error(t, root.UnlinkAt(name, 0), "unlink %q", name)
	}
	require.Error(t, root.UnlinkAt("../outside/marker", 0))
	require.Error(t, root.RenameAt("../outside/marker", root, "got"))
	e.check(t)
}

func TestEscapeThroughGuestMadeLinks(t *testing.T) {
	e := newEscapeTree(t)
	root := e.attach(t, false)
	for name, target := range map[string]string{
		"g-abs": e.marker, "g-rel": "../outside/marker", "g-dir": "../outside", "g-absdir": e.outside,
	} {
		_, err := root.Symlink(target, name, p9.NoUID, p9.NoGID)
		require.NoError(t, err)
		_, _, err = mustWalk(t, root, name).Open(p9.ReadWrite)
		require.Error(t, err)
		_, err = bwalk(t, root, name, "marker")
		require.Error(t, err)
	}
	// A guest directory replaced, on the host, by a link to the outside:
	// the guest's old fid stays on the directory (now renamed), and a new
	// walk stops at the link.
	_, err := root.Mkdir("d", 0o755, p9.NoUID, p9.NoGID)
	require.NoError(t, err)
	d := mustWalk(t, root, "d")
	require.NoError(t, os.Rename(filepath.Join(e.root, "d"), filepath.Join(e.root, "d-moved")))
	require.NoError(t, os.Symlink("../outside", filepath.Join(e.root, "d")))
	_, err = bwalk(t, d, "marker")
	require.ErrorIs(t, err, linux.ENOENT)
	_, _, _, err = mustWalk(t, d).Create("marker", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
	require.NoError(t, err, "creates in the moved directory, inside the root")
	_, err = os.Stat(filepath.Join(e.root, "d-moved", "marker"))
	require.NoError(t, err)
	_, err = bwalk(t, root, "d", "marker")
	require.ErrorIs(t, err, linux.ENOTDIR)
	e.check(t)
}

func TestEscapeThroughAMountPoint(t *testing.T) {
	e := newEscapeTree(t)
	mnt := filepath.Join(e.root, "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	if err := unix.Mount(e.outside, mnt, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount for the test (needs CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	// Setting up the mount touched nothing; watch from here.
	buf := make([]byte, 4096)
	unix.Read(e.inotify, buf)
	root := e.attach(t, false)
	_, err := bwalk(t, root, "mnt")
	require.ErrorIs(t, err, linux.EXDEV, "RESOLVE_NO_XDEV: the walk stops at the mount")
	_, err = bwalk(t, root, "mnt", "marker")
	require.Error(t, err)
	require.Error(t, root.UnlinkAt("mnt", unix.AT_REMOVEDIR))
	e.check(t)
}

func TestRootParentIsNotShown(t *testing.T) {
	e := newEscapeTree(t)
	root := e.attach(t, false)
	d := mustWalk(t, root)
	_, _, err := d.Open(p9.ReadOnly)
	require.NoError(t, err)
	ents, err := d.Readdir(0, 1<<16)
	require.NoError(t, err)
	var st unix.Stat_t
	require.NoError(t, unix.Stat(e.root, &st))
	found := false
	for _, ent := range ents {
		if ent.Name == ".." {
			found = true
			require.Equal(t, st.Ino, ent.QID.Path, "the root's .. is the root")
		}
	}
	require.True(t, found)
	e.check(t)
}

func TestEscapeThroughTheServer(t *testing.T) {
	e := newEscapeTree(t)
	r := newRaw(t, e.root, false)
	for _, names := range [][]string{{".."}, {"dir-link", "marker"}, {"sub", "up", "marker"}, {"abs-dir-link", "dir"}} {
		r.fail(tWalk, 0, 1, names)
	}
	require.Equal(t, linux.EEXIST, r.fail(tLcreate, 0, "dangling", oRDWR, 0o644, 0))
	r.ok(tWalk, 0, 1, []string{"abs-link"})
	r.fail(tLopen, 1, 0)
	require.Equal(t, linux.EINVAL, r.fail(tRenameat, 0, "file", 0, "../outside/stolen"))
	require.Equal(t, linux.EINVAL, r.fail(tLink, 0, 1, "../hard"))
	require.Equal(t, linux.EINVAL, r.fail(tUnlinkat, 0, "../outside/marker", 0))
	r.fail(tMknod, 0, "../outside/fifo", uint32(unix.S_IFIFO|0o644), 0, 0, 0)
	e.check(t)
}
