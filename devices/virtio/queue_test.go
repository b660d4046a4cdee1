package virtio

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBadChainsNeedReset(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(d *fakeDriver)
	}{
		{"descriptor loop", func(d *fakeDriver) {
			d.putDesc(d.desc, 0, d.alloc(nil, 8), 8, descFWrite|descFNext, 1)
			d.putDesc(d.desc, 1, d.alloc(nil, 8), 8, descFWrite|descFNext, 0)
			d.publish(0)
		}},
		{"buffer outside guest memory", func(d *fakeDriver) {
			d.putDesc(d.desc, 0, testMemSize-4, 8, descFWrite, 0)
			d.publish(0)
		}},
		{"huge length", func(d *fakeDriver) {
			d.putDesc(d.desc, 0, 0x10000, 0xffffffff, descFWrite, 0)
			d.publish(0)
		}},
		{"head out of range", func(d *fakeDriver) { d.publish(200) }},
		{"next out of range", func(d *fakeDriver) {
			d.putDesc(d.desc, 0, d.alloc(nil, 8), 8, descFWrite|descFNext, 99)
			d.publish(0)
		}},
		{"available index jumps past the queue", func(d *fakeDriver) {
			store16(d.raw[d.avail+2:], 1000)
			d.tr.Kick(0)
		}},
		{"nested indirect", func(d *fakeDriver) {
			inner := d.alloc(nil, 16)
			d.putDesc(inner, 0, inner, 16, descFIndirect, 0)
			d.putDesc(d.desc, 0, inner, 16, descFIndirect, 0)
			d.publish(0)
		}},
		{"indirect table with a bad length", func(d *fakeDriver) {
			d.putDesc(d.desc, 0, d.alloc(nil, 20), 20, descFIndirect, 0)
			d.publish(0)
		}},
		{"readable after writable", func(d *fakeDriver) {
			d.putDesc(d.desc, 0, d.alloc(nil, 8), 8, descFWrite|descFNext, 1)
			d.putDesc(d.desc, 1, d.alloc(nil, 8), 8, 0, 0)
			d.publish(0)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDriver(t, NewRNG())
			d.setup(16, 0)
			c.build(d)
			d.waitNeedsReset()
			// A reset clears the condition.
			d.w32(RegStatus, 0)
			require.Zero(t, d.r32(RegStatus))
		})
	}
}

func TestQueueActivateChecksRings(t *testing.T) {
	mem := newDriver(t, NewRNG()).mem
	for _, q := range []Queue{
		{Size: 0},
		{Size: 3},
		{Size: 16, DescAddr: testMemSize - 16},
		{Size: 16, DriverAddr: testMemSize},
		{Size: 16, DeviceAddr: 1 << 63},
		// Rings off the alignment 2.7 asks for: the device reads and
		// writes their indices atomically, a word at a time.
		{Size: 16, DescAddr: 0x1008, DriverAddr: 0x3000, DeviceAddr: 0x4000},
		{Size: 16, DescAddr: 0x1000, DriverAddr: 0x3001, DeviceAddr: 0x4000},
		{Size: 16, DescAddr: 0x1000, DriverAddr: 0x3000, DeviceAddr: 0x4002},
		// A used ring whose last field ends 2 bytes before the end of
		// guest memory: the word that holds it does not.
		{Size: 16, DescAddr: 0x1000, DriverAddr: 0x3000, DeviceAddr: testMemSize - (6 + 8*16)},
	} {
		require.ErrorIs(t, q.Activate(mem), ErrBadChain, "%+v", q)
	}
	// An available ring that ends with guest memory is fine: its last
	// field is the upper half of the last word.
	q := Queue{Size: 16, DescAddr: 0x1000, DriverAddr: testMemSize - (6 + 2*16), DeviceAddr: 0x4000}
	require.NoError(t, q.Activate(mem))
	require.Zero(t, load16(q.avail[4+2*16:]))
}

// TestRingWords: load16 and store16 reach the field they are given, in
// either half of its word, and leave the other half alone.
func TestRingWords(t *testing.T) {
	b := make([]byte, 8)
	for i := range b {
		b[i] = 0xaa
	}
	store16(b[2:], 0x1234)
	store16(b[4:], 0x5678)
	require.Equal(t, []byte{0xaa, 0xaa, 0x34, 0x12, 0x78, 0x56, 0xaa, 0xaa}, b)
	require.EqualValues(t, 0x1234, load16(b[2:]))
	require.EqualValues(t, 0x5678, load16(b[4:]))
	require.EqualValues(t, 0xaaaa, load16(b[6:]))
}

func TestSplitHelpers(t *testing.T) {
	bufs := [][]byte{[]byte("ab"), []byte("cdef"), []byte("g")}
	hdr, rest := splitFront(bufs, 3)
	require.Equal(t, "abc", string(hdr))
	require.Equal(t, "defg", string(flatten(rest)))
	hdr, rest = splitFront(bufs, 2)
	require.Equal(t, "ab", string(hdr))
	require.Equal(t, "cdefg", string(flatten(rest)))
	hdr, _ = splitFront(bufs, 8)
	require.Nil(t, hdr)

	rest, tail := splitBack(bufs, 1)
	require.Equal(t, "g", string(tail))
	require.Equal(t, "abcdef", string(flatten(rest)))
	_, tail = splitBack([][]byte{[]byte("ab"), {}}, 1)
	require.Nil(t, tail)
}
