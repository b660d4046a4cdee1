package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openRoot opens dir as a container root for the *In functions.
func openRoot(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestMkdirAllInStaysInside: links in the container's root, absolute or
// climbing with "..", dangling or not, are followed as if the root were
// "/": the directories are made inside it, never outside.
func TestMkdirAllInStaysInside(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	require.NoError(t, os.Mkdir(root, 0o755))
	require.NoError(t, os.Symlink("/kiln", filepath.Join(root, "abs")))          // dangling, absolute
	require.NoError(t, os.Symlink("../../../../tmp", filepath.Join(root, "up"))) // climbing out
	require.NoError(t, os.Symlink("loop2", filepath.Join(root, "loop1")))        // a loop
	require.NoError(t, os.Symlink("loop1", filepath.Join(root, "loop2")))        //
	require.NoError(t, os.Symlink(top, filepath.Join(root, "host")))             // the host's path of the root's parent
	rfd := openRoot(t, root)

	for p, want := range map[string]string{
		"/abs/shares/m": "kiln/shares/m",
		"/up/u":         "tmp/u",
		"/a/b/c":        "a/b/c",
		"/host/x":       filepath.Join(top[1:], "x"),
	} {
		fd, err := mkdirAllIn(rfd, p)
		require.NoError(t, err, p)
		unix.Close(fd)
		require.DirExists(t, filepath.Join(root, want), p)
	}
	require.NoDirExists(t, filepath.Join(top, "x"), "nothing made outside the root")

	_, err := mkdirAllIn(rfd, "/loop1/x")
	require.Error(t, err, "a loop of links ends")
}
