package virtio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/devices"
	"github.com/kiln-vmm/kiln/vmm/memory"
)

// restoreInto moves d's device, as a snapshot would, into a new transport
// on a copy of its guest memory: the driver (d) then talks to the copy.
func restoreInto(t *testing.T, d *fakeDriver, dev Device) {
	t.Helper()
	d.tr.Pause()
	s, err := d.tr.Save()
	require.NoError(t, err)
	b, err := json.Marshal(s) // the state survives its file format
	require.NoError(t, err)
	var back TransportState
	require.NoError(t, json.Unmarshal(b, &back))

	raw := append([]byte(nil), d.raw...)
	d.raw, d.mem = raw, memory.FromBytes(raw)
	d.irq = &devices.CountingInterrupt{}
	d.tr = NewTransport(dev, d.mem, d.irq)
	require.NoError(t, d.tr.Restore(back))
	t.Cleanup(d.tr.Reset)
}

func TestSnapshotRestoreGoesOnWhereItWas(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(8, FeatureVersion1) // no EVENT_IDX: an interrupt for every buffer
	for i := 0; i < 5; i++ {    // part of the way round the ring
		d.submit(buf{n: 4, write: true})
		d.wait()
	}
	before := d.r32(RegStatus)
	restoreInto(t, d, NewRNG())
	require.Equal(t, before, d.r32(RegStatus), "the driver sees the same status")
	for i := 0; i < 12; i++ { // past the end of the ring: the indices go on
		d.submit(buf{n: 4, write: true})
		_, n := d.wait()
		require.EqualValues(t, 4, n)
	}
	require.Positive(t, d.irq.N, "the restored device interrupts")
}

func TestSnapshotKeepsAFailure(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(8, 0)
	d.putDesc(d.desc, 0, 0, 4, descFNext|descFWrite, 0) // a loop
	d.next = 1
	d.publish(0)
	d.waitNeedsReset()
	restoreInto(t, d, NewRNG())
	require.NotZero(t, d.r32(RegStatus)&StatusDeviceNeedsReset)
	require.ErrorContains(t, d.tr.Failure(), "loop")
}

func TestSnapshotDiskMustMatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(path, make([]byte, 4096), 0o644))
	b, err := NewBlock(path, false, "x")
	require.NoError(t, err)
	defer b.Close()
	d := newDriver(t, b)
	d.setup(8, 0)
	d.tr.Pause()
	s, err := d.tr.Save()
	require.NoError(t, err)

	require.NoError(t, os.Truncate(path, 8192))
	grown, err := NewBlock(path, false, "x")
	require.NoError(t, err)
	defer grown.Close()
	err = NewTransport(grown, d.mem, d.irq).Restore(s)
	require.ErrorContains(t, err, "the snapshot's had 8 read-only=false")
}

func TestNetIsNotSnapshottable(t *testing.T) {
	tp, _ := fakeTap(t)
	n, err := NewNet(tp, []byte{2, 0, 0, 0, 0, 1})
	require.NoError(t, err)
	defer n.Close()
	tr := NewTransport(n, memory.FromBytes(make([]byte, 4096)), &devices.CountingInterrupt{})
	tr.Pause()
	_, err = tr.Save()
	require.ErrorIs(t, err, ErrNotSnapshottable)
	require.ErrorContains(t, err, "virtio-net")
}

func TestSnapshotRefusesAMismatchedDevice(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(8, 0)
	d.tr.Pause()
	s, err := d.tr.Save()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(path, make([]byte, 4096), 0o644))
	b, err := NewBlock(path, false, "x")
	require.NoError(t, err)
	defer b.Close()
	require.ErrorContains(t, NewTransport(b, d.mem, d.irq).Restore(s), "the snapshot has a rng device here")
}
