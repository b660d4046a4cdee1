package share

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// snapshot records every name, mode, size, mtime and ctime below dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		out[p] = fmtStat(&st)
		return nil
	}))
	return out
}

func fmtStat(st *unix.Stat_t) string {
	return fmt.Sprintf("mode %o size %d mtime %d.%d ctime %d.%d links %d owner %d:%d",
		st.Mode, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, st.Nlink, st.Uid, st.Gid)
}

func TestReadOnlyRefusesEveryChange(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	require.NoError(t, os.Symlink("f", filepath.Join(dir, "l")))
	unix.Setxattr(filepath.Join(dir, "f"), "user.x", []byte("y"), 0)
	before := snapshot(t, dir)

	sh, err := New(dir, true)
	require.NoError(t, err)
	defer sh.Close()
	require.True(t, sh.ReadOnly())
	root, err := sh.Attach()
	require.NoError(t, err)
	f := mustWalk(t, root, "f")
	d := mustWalk(t, root, "d")

	rofs := func(what string, err error) {
		t.Helper()
		require.ErrorIs(t, err, linux.EROFS, what)
	}
	_, _, _, err = mustWalk(t, root).Create("new", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
	rofs("create", err)
	_, err = root.Mkdir("new", 0o755, p9.NoUID, p9.NoGID)
	rofs("mkdir", err)
	_, err = root.Symlink("f", "new", p9.NoUID, p9.NoGID)
	rofs("symlink", err)
	rofs("link", root.Link(f, "new"))
	_, err = root.Mknod("new", p9.ModeNamedPipe|0o644, 0, 0, p9.NoUID, p9.NoGID)
	rofs("mknod", err)
	_, err = root.Mknod("new", p9.ModeCharacterDevice|0o644, 1, 3, p9.NoUID, p9.NoGID)
	rofs("mknod of a device", err)
	rofs("rename", root.RenameAt("f", d, "g"))
	rofs("unlink", root.UnlinkAt("f", 0))
	rofs("rmdir", root.UnlinkAt("d", unix.AT_REMOVEDIR))
	for what, m := range map[string]p9.SetAttrMask{
		"chmod": {Permissions: true}, "chown": {UID: true, GID: true}, "truncate": {Size: true},
		"utimes": {ATime: true, MTime: true}, "ctime": {CTime: true},
	} {
		rofs(what, f.SetAttr(m, p9.SetAttr{Permissions: 0o777}))
		rofs(what+" on a directory", d.SetAttr(m, p9.SetAttr{Permissions: 0o777}))
	}
	rofs("setxattr", f.SetXattr("user.x", []byte("z"), 0))
	rofs("removexattr", f.RemoveXattr("user.x"))
	for _, mode := range []p9.OpenFlags{p9.WriteOnly, p9.ReadWrite, p9.ReadOnly | dotlTrunc} {
		_, _, err := mustWalk(t, root, "f").Open(mode)
		rofs("open for write", err)
	}
	// Reading works, and writing through a read-only open does not.
	g := mustWalk(t, root, "f")
	_, _, err = g.Open(p9.ReadOnly)
	require.NoError(t, err)
	buf := make([]byte, 10)
	n, err := g.ReadAt(buf, 0)
	require.NoError(t, err)
	require.Equal(t, "data", string(buf[:n]))
	_, err = g.WriteAt([]byte("x"), 0)
	rofs("write", err)
	require.NoError(t, g.FSync())
	_, err = bwalk(t, root, "d")
	require.NoError(t, err)
	_, _, _, err = f.GetAttr(p9.AttrMaskAll)
	require.NoError(t, err)

	// And through the server: the same, plus Txattrcreate.
	r := newRaw(t, dir, true)
	r.ok(tWalk, 0, 1, []string{"f"})
	require.Equal(t, linux.EROFS, r.fail(tLopen, 1, oRDWR))
	require.Equal(t, linux.EROFS, r.fail(tXattrcreate, 1, "user.x", uint64(1), 0))
	require.Equal(t, linux.EROFS, r.fail(tLcreate, 0, "new", oRDWR, 0o644, 0))
	require.Equal(t, linux.EROFS, r.fail(tSetattr, 1, 1, 0o777, 0, 0, uint64(0), uint64(0), uint64(0), uint64(0), uint64(0)))
	require.Equal(t, linux.EROFS, r.fail(tRenameat, 0, "f", 0, "g"))
	require.Equal(t, linux.EROFS, r.fail(tUnlinkat, 0, "f", 0))

	require.Equal(t, before, snapshot(t, dir), "nothing on the host changed")
}
