package virtio

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testWait, pollEvery = 5 * time.Second, time.Millisecond

func TestRNGFillsBuffers(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(16, 0)
	a := d.submit(buf{n: 64, write: true}, buf{n: 32, write: true})
	head, n := d.wait()
	require.Zero(t, head)
	require.EqualValues(t, 96, n)
	require.False(t, bytes.Equal(d.raw[a[0]:a[0]+64], make([]byte, 64)), "random bytes written")
}

func TestRNGUnderEventIdxAndIndirect(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(8, 0) // all features: EVENT_IDX and INDIRECT_DESC
	// An indirect table of two writable buffers.
	table := d.alloc(nil, 32)
	b1, b2 := d.alloc(nil, 8), d.alloc(nil, 8)
	d.putDesc(table, 0, b1, 8, descFWrite|descFNext, 1)
	d.putDesc(table, 1, b2, 8, descFWrite, 0)
	d.putDesc(d.desc, 0, table, 32, descFIndirect, 0)
	d.next = 1
	d.publish(0)
	_, n := d.wait()
	require.EqualValues(t, 16, n)
	for i := 0; i < 20; i++ { // wrap the ring a few times
		d.submit(buf{n: 4, write: true})
		_, n = d.wait()
		require.EqualValues(t, 4, n)
	}
}
