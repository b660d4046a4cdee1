package memory

import (
	"testing"

	"github.com/stretchr/testify/require"
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
