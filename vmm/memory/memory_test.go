package memory

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSliceBounds(t *testing.T) {
	g := FromBytes(make([]byte, 4096))
	s, err := g.Slice(4000, 96)
	require.NoError(t, err)
	require.Len(t, s, 96)

	for _, c := range []struct{ gpa, n uint64 }{
		{4000, 97}, {4096, 1}, {1 << 63, 1}, {0, 1 << 63}, {^uint64(0), 2},
	} {
		_, err := g.Slice(c.gpa, c.n)
		require.ErrorIs(t, err, ErrOutOfRange, "gpa=%#x n=%#x", c.gpa, c.n)
	}
	// A zero-length slice at the very end is in range.
	_, err = g.Slice(4096, 0)
	require.NoError(t, err)
}

func TestReadWriteAt(t *testing.T) {
	g := FromBytes(make([]byte, 64))
	_, err := g.WriteAt([]byte("kiln"), 10)
	require.NoError(t, err)
	b := make([]byte, 4)
	_, err = g.ReadAt(b, 10)
	require.NoError(t, err)
	require.Equal(t, "kiln", string(b))
	_, err = g.WriteAt([]byte("x"), -1)
	require.ErrorIs(t, err, ErrOutOfRange)
}

func TestNewSplitsAroundMMIOGap(t *testing.T) {
	g, err := New(64 << 20)
	require.NoError(t, err)
	defer g.Close()
	require.Len(t, g.Regions(), 1)
	require.EqualValues(t, 64<<20, g.Size())
}

func TestWriteFileAndMapPrivate(t *testing.T) {
	g, err := New(64 << 20)
	require.NoError(t, err)
	defer g.Close()
	_, err = g.WriteAt([]byte("kernel"), 16<<20)
	require.NoError(t, err)
	_, err = g.WriteAt([]byte("initrd"), 64<<20-4096)
	require.NoError(t, err)

	path := filepath.Join(t.TempDir(), "memory")
	written, err := g.WriteFile(path)
	require.NoError(t, err)
	require.EqualValues(t, 2*4096, written, "only the two pages that are not zero")
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.EqualValues(t, 64<<20, st.Size())
	var sys unix.Stat_t
	require.NoError(t, unix.Stat(path, &sys))
	require.Less(t, sys.Blocks*512, int64(1<<20), "the file is sparse")

	r, err := FromFile(path, 64<<20)
	require.NoError(t, err)
	defer r.Close()
	b := make([]byte, 6)
	_, err = r.ReadAt(b, 16<<20)
	require.NoError(t, err)
	require.Equal(t, "kernel", string(b))
	_, err = r.ReadAt(b, 64<<20-4096)
	require.NoError(t, err)
	require.Equal(t, "initrd", string(b))

	// A write goes to this VM's copy only.
	_, err = r.WriteAt([]byte("guest!"), 16<<20)
	require.NoError(t, err)
	again, err := FromFile(path, 64<<20)
	require.NoError(t, err)
	defer again.Close()
	_, err = again.ReadAt(b, 16<<20)
	require.NoError(t, err)
	require.Equal(t, "kernel", string(b), "the file and other VMs never see it")

	_, err = FromFile(path, 128<<20)
	require.ErrorContains(t, err, "want 134217728")
}
