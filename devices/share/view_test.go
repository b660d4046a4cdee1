package share

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/stretchr/testify/require"
)

// names lists a directory through the client.
func names(t *testing.T, dir p9.File) []string {
	t.Helper()
	d := walk(t, dir)
	_, _, err := d.Open(p9.ReadOnly)
	require.NoError(t, err)
	var out []string
	for off := uint64(0); ; {
		ents, err := d.Readdir(off, 64<<10)
		require.NoError(t, err)
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			if e.Name != "." && e.Name != ".." {
				out = append(out, e.Name)
			}
			off = e.Offset
		}
	}
	sort.Strings(out)
	return out
}

func TestViewNameHoldsOnlyTheDirectory(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("hi"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(parent, "secret"), []byte("no"), 0o644))
	sh, err := NewView(dir, View{Name: "data"}, false)
	require.NoError(t, err)
	root, _ := serveShare(t, sh)

	require.Equal(t, []string{"data"}, names(t, root))
	_, _, attr, err := root.GetAttr(p9.AttrMaskAll)
	require.NoError(t, err)
	require.True(t, attr.Mode.IsDir())
	require.Equal(t, p9.FileMode(0o555), attr.Mode.Permissions())

	// Below the entry, the share is the directory, writable as asked.
	require.Equal(t, []string{"f"}, names(t, walk(t, root, "data")))
	f := walk(t, root, "data", "f")
	_, _, err = f.Open(p9.ReadOnly)
	require.NoError(t, err)
	buf := make([]byte, 8)
	n, _ := f.ReadAt(buf, 0)
	require.Equal(t, "hi", string(buf[:n]))
	create(t, walk(t, root, "data"), "new")
	require.FileExists(t, filepath.Join(dir, "new"))

	// The root holds nothing else, and takes no changes.
	for _, name := range []string{"secret", "f", "..", "."} {
		_, _, err := root.Walk([]string{name})
		require.Error(t, err, "walk %q from the view's root", name)
	}
	d := walk(t, root)
	_, _, _, err = d.Create("x", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
	require.ErrorIs(t, err, linux.EROFS)
	_, err = d.Mkdir("x", 0o755, p9.NoUID, p9.NoGID)
	require.ErrorIs(t, err, linux.EROFS)
	require.ErrorIs(t, d.UnlinkAt("data", 0x200), linux.EROFS)
	require.ErrorIs(t, d.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777}), linux.EROFS)
	require.Error(t, walk(t, root, "data").RenameAt("f", d, "f"))
	require.FileExists(t, filepath.Join(dir, "f"))
	_, err = d.StatFS()
	require.NoError(t, err)
}

func TestViewFilesHoldsOnlyThoseFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"hosts", "resolv.conf", "config.json"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644))
	}
	sh, err := NewView(dir, View{Files: []string{"hosts", "resolv.conf", "gone"}}, true)
	require.NoError(t, err)
	root, _ := serveShare(t, sh)

	// A name bound but no longer there is not listed.
	require.Equal(t, []string{"hosts", "resolv.conf"}, names(t, root))
	f := walk(t, root, "resolv.conf")
	_, _, err = f.Open(p9.ReadOnly)
	require.NoError(t, err)
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	require.Equal(t, "resolv.conf", string(buf[:n]))
	_, _, err = root.Walk([]string{"config.json"})
	require.ErrorIs(t, err, linux.ENOENT)
	_, _, err = root.Walk([]string{"gone"})
	require.ErrorIs(t, err, linux.ENOENT)
}

func TestNewViewRefusesBadViews(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []View{
		{Name: "a", Files: []string{"b"}},
		{Name: ".."},
		{Files: []string{"a/b"}},
		{Files: []string{""}},
	} {
		_, err := NewView(dir, v, false)
		require.ErrorIs(t, err, ErrBadShare, "%+v", v)
	}
}
