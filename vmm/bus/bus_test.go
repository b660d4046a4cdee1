package bus

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a device that remembers the last access.
type recorder struct {
	off  uint64
	data []byte
}

func (r *recorder) Read(off uint64, d []byte) {
	r.off = off
	for i := range d {
		d[i] = byte(off) + byte(i)
	}
}
func (r *recorder) Write(off uint64, d []byte) { r.off, r.data = off, append([]byte(nil), d...) }

func TestRoutingGivesDeviceOffsets(t *testing.T) {
	b := New("pio")
	a, c := &recorder{}, &recorder{}
	require.NoError(t, b.Insert("a", 0x3f8, 8, a))
	require.NoError(t, b.Insert("c", 0x60, 1, c))

	require.Equal(t, "a", b.Write(0x3fb, []byte{0x80}))
	require.EqualValues(t, 3, a.off)
	require.Equal(t, []byte{0x80}, a.data)

	d := make([]byte, 2)
	require.Equal(t, "a", b.Read(0x3fc, d))
	require.Equal(t, []byte{4, 5}, d)
	require.Equal(t, "c", b.Write(0x60, []byte{1}))
	require.Zero(t, b.Unmapped())
}

func TestUnmappedReadsAllOnesAndCounts(t *testing.T) {
	b := New("mmio")
	require.NoError(t, b.Insert("a", 0x1000, 0x100, &recorder{}))
	d := []byte{0, 0, 0, 0}
	require.Equal(t, "", b.Read(0x2000, d))
	require.Equal(t, []byte{0xff, 0xff, 0xff, 0xff}, d)
	require.Equal(t, "", b.Write(0x0fff, []byte{1}))
	// An access that starts inside a device but runs past its end is not
	// the device's.
	require.Equal(t, "", b.Read(0x10fe, d))
	require.EqualValues(t, 3, b.Unmapped())
}

func TestInsertRefusesOverlap(t *testing.T) {
	b := New("pio")
	require.NoError(t, b.Insert("a", 0x100, 0x10, &recorder{}))
	require.NoError(t, b.Insert("b", 0x110, 0x10, &recorder{}))
	require.NoError(t, b.Insert("c", 0xf0, 0x10, &recorder{}))
	for _, c := range []struct{ base, size uint64 }{
		{0x100, 1}, {0x10f, 1}, {0xff, 2}, {0x11f, 8}, {0x0, 0x1000}, {0x105, 0x4},
	} {
		require.Error(t, b.Insert("x", c.base, c.size, &recorder{}), "%#x+%#x", c.base, c.size)
	}
	require.Error(t, b.Insert("zero", 0x500, 0, &recorder{}))
	require.Error(t, b.Insert("wrap", ^uint64(0)-1, 4, &recorder{}))
	require.Len(t, b.Ranges(), 3)
	require.Equal(t, []string{"c", "a", "b"}, []string{b.Ranges()[0].Name, b.Ranges()[1].Name, b.Ranges()[2].Name})
}
