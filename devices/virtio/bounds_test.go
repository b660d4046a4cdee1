package virtio

// Tests of the resource bounds a guest cannot push kiln past
// (docs/reliability.md, "Resource bounds"): each drives a device past its
// bound, as a hostile guest would, and checks that kiln's memory,
// goroutines or work stay within it.

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// allocated returns the bytes f allocated on the Go heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// repeated returns n buffers that are all buf: a chain that describes
// n*len(buf) bytes, as a guest's chain of descriptors that all point at
// the same guest RAM does.
func repeated(buf []byte, n int) [][]byte {
	bs := make([][]byte, n)
	for i := range bs {
		bs[i] = buf
	}
	return bs
}

// TestBlockDiscardCopiesAtMostItsSegments: a discard or write-zeroes
// request whose chain describes 64 MiB of ranges is refused as
// unsupported without kiln copying them (found by guest/attack: kiln
// copied the whole chain, hundreds of MiB, before looking at it).
func TestBlockDiscardCopiesAtMostItsSegments(t *testing.T) {
	p := image(t, 16*SectorSize)
	b, err := NewBlock(p, false, "")
	require.NoError(t, err)
	defer b.Close()
	status := []byte{0xff}
	for _, typ := range []uint32{blkTDiscard, blkTWriteZeroes} {
		c := &Chain{
			Readable: append([][]byte{header(typ, 0)}, repeated(make([]byte, 1<<20), 64)...),
			Writable: [][]byte{status},
		}
		n := allocated(func() {
			_, err := b.handle(c)
			require.NoError(t, err)
		})
		require.EqualValues(t, blkSUnsupp, status[0], "request type %d", typ)
		require.Less(t, n, uint64(64<<10), "request type %d: kiln allocated %d bytes", typ, n)
	}
}
