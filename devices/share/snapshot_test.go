package share

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/hugelgupf/p9/linux"
	"github.com/stretchr/testify/require"
)

// Linux's O_APPEND, as the guest sends it in Tlopen.
const oAPPEND = 0o2000

// saveRestore saves r's session and restores it into a new server on dir,
// through JSON as a snapshot keeps it; r then speaks to the new server,
// with the same fids, as a restored guest does.
func saveRestore(t *testing.T, r *raw, dir string) {
	t.Helper()
	b, err := r.srv.SaveSession()
	require.NoError(t, err)
	require.NotNil(t, b)
	sh, err := New(dir, false)
	require.NoError(t, err)
	srv := NewServer(sh)
	t.Cleanup(func() { srv.Reset(); sh.Close() })
	require.NoError(t, srv.RestoreSession(b))
	r.srv = srv
}

// TestSessionSurvivesRestore: the fids a guest holds (a directory, a file
// open for appending, one open for reading part-way, a file it created,
// one it renamed, and a path deeper than one Twalk's 16 names) work the
// same on a server restored from the saved session, over a copy of the
// directory.
func TestSessionSurvivesRestore(t *testing.T) {
	dir := t.TempDir()
	deep := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r"}
	require.NoError(t, os.MkdirAll(filepath.Join(append([]string{dir}, deep...)...), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(append(append([]string{dir}, deep...), "leaf")...), []byte("deep"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "log"), []byte("one\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old"), []byte("renamed"), 0o644))
	r := newRaw(t, dir, false)

	r.ok(tWalk, 0, 1, []string{"log"})
	r.ok(tLopen, 1, oRDWR|oAPPEND)
	r.ok(tWalk, 0, 2, []string{})
	r.ok(tLcreate, 2, "made", oRDWR, 0o644, 0)
	r.ok(tWrite, 2, uint64(0), 4, []byte("new\n"))
	r.ok(tWalk, 0, 3, []string{"old"})
	r.ok(tRenameat, 0, "old", 0, "moved")
	r.ok(tLopen, 3, 0)
	r.ok(tWalk, 0, 4, deep[:9])
	r.ok(tWalk, 4, 5, append(deep[9:], "leaf"))
	r.ok(tWalk, 0, 6, []string{"nothing", "here"}[:0])
	r.ok(tWalk, 0, 7, []string{"log"})
	r.ok(tLopen, 7, 0)

	// The restored VM runs on another host directory with the same names.
	copyDir := t.TempDir()
	require.NoError(t, os.CopyFS(copyDir, os.DirFS(dir)))
	saveRestore(t, r, copyDir)

	r.ok(tWrite, 1, uint64(0), 4, []byte("two\n")) // O_APPEND: at the end, whatever the offset
	got, err := os.ReadFile(filepath.Join(copyDir, "log"))
	require.NoError(t, err)
	require.Equal(t, "one\ntwo\n", string(got))
	require.Equal(t, "new\n", string(readAll(t, r, 2)), "the created file, open read-write, not truncated again")
	require.Equal(t, "renamed", string(readAll(t, r, 3)), "the file it renamed, under its new name")
	r.ok(tLopen, 5, 0)
	require.Equal(t, "deep", string(readAll(t, r, 5)))
	r.ok(tWalk, 6, 8, []string{"moved"}) // a directory fid walks on
	r.ok(tClunk, 8)
	require.Equal(t, "one\ntwo\n", string(readAll(t, r, 7)))
	require.Zero(t, r.strays())
}

// readAll reads an open fid from offset 0.
func readAll(t *testing.T, r *raw, fid uint32) []byte {
	t.Helper()
	body := r.ok(tRead, fid, uint64(0), 4096)
	n := binary.LittleEndian.Uint32(body)
	return body[4 : 4+n]
}

// TestSaveRefusesWhatCannotBeReopened: a removed file the guest holds
// open, and an xattr being read, make SaveSession fail with a line naming
// the file; a directory renamed over carries the fids below it along.
func TestSaveRefusesWhatCannotBeReopened(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "f"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmp"), []byte("x"), 0o644))
	r := newRaw(t, dir, false)

	r.ok(tWalk, 0, 1, []string{"tmp"})
	r.ok(tLopen, 1, 0)
	r.ok(tUnlinkat, 0, "tmp", 0)
	_, err := r.srv.saveSession()
	require.ErrorIs(t, err, ErrUnsaveable)
	require.ErrorContains(t, err, "holds /tmp open, a file it removed")
	r.ok(tClunk, 1)

	r.ok(tXattrwalk, 0, 2, "")
	_, err = r.srv.saveSession()
	require.ErrorContains(t, err, "extended attribute")
	r.ok(tClunk, 2)

	r.ok(tWalk, 0, 3, []string{"d", "f"})
	r.ok(tLopen, 3, 0)
	r.ok(tRenameat, 0, "d", 0, "e")
	st, err := r.srv.saveSession()
	require.NoError(t, err)
	require.Len(t, st.Fids, 2)
	require.Equal(t, []string{"e", "f"}, st.Fids[1].Path)

	// A restore where the file is missing fails, naming it, and leaves
	// the server with no session.
	empty := t.TempDir()
	sh, err := New(empty, false)
	require.NoError(t, err)
	srv := NewServer(sh)
	t.Cleanup(func() { srv.Reset(); sh.Close() })
	err = srv.restoreSession(st)
	require.ErrorContains(t, err, "walk to /e/f")
	require.ErrorIs(t, err, linux.ENOENT)
	require.False(t, srv.InSession())
}

// TestNoSessionSavesNothing: a share the guest never mounted saves no
// session and restores to none.
func TestNoSessionSavesNothing(t *testing.T) {
	sh, err := New(t.TempDir(), false)
	require.NoError(t, err)
	srv := NewServer(sh)
	defer sh.Close()
	st, err := srv.SaveSession()
	require.NoError(t, err)
	require.Nil(t, st)
	require.NoError(t, srv.RestoreSession(nil))
	require.False(t, srv.InSession())
}
