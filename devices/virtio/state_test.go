package virtio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/devices"
	"github.com/kiln-vmm/kiln/devices/share"
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
	require.Positive(t, d.irq.Count(), "the restored device interrupts")
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

// TestP9SnapshotBeforeAMount: a 9P device is snapshotted before the guest
// mounts its share, and restored behind another host directory; once the
// guest has a session, a snapshot holds it, and the device restored from
// it (behind a third directory with the same names) serves the guest's
// fids: an open file reads on, with no Tversion or Tattach of its own.
func TestP9SnapshotBeforeAMount(t *testing.T) {
	first, second := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(second, "only-here"), []byte("x"), 0o644))
	sh, err := share.New(first, false)
	require.NoError(t, err)
	t.Cleanup(func() { sh.Close() })
	d := p9Driver(t, share.NewServer(sh))

	sh2, err := share.New(second, false)
	require.NoError(t, err)
	t.Cleanup(func() { sh2.Close() })
	dev, err := NewP9("kilnshare", share.NewServer(sh2))
	require.NoError(t, err)
	restoreInto(t, d, dev)

	// The restored device serves the second directory.
	r := d.p9rpc(p9msg(p9Tversion, 0xffff, uint32(8192), "9P2000.L"), 8192)
	require.EqualValues(t, p9Tversion+1, r[4])
	r = d.p9rpc(p9msg(p9Tattach, 1, uint32(0), uint32(p9NoFID), "root", "", uint32(0)), 8192)
	require.EqualValues(t, p9Tattach+1, r[4])
	r = d.p9rpc(p9msg(p9Twalk, 2, uint32(0), uint32(1), []string{"only-here"}), 8192)
	require.EqualValues(t, p9Twalk+1, r[4], "a file of the directory given at restore")

	r = d.p9rpc(p9msg(p9Tlopen, 3, uint32(1), uint32(0)), 8192)
	require.EqualValues(t, p9Tlopen+1, r[4])

	// Now the guest has a session, with an open file: the snapshot
	// holds it.
	third := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(third, "only-here"), []byte("third"), 0o644))
	sh3, err := share.New(third, false)
	require.NoError(t, err)
	t.Cleanup(func() { sh3.Close() })
	dev3, err := NewP9("kilnshare", share.NewServer(sh3))
	require.NoError(t, err)
	restoreInto(t, d, dev3)
	r = d.p9rpc(p9msg(p9Tread, 4, uint32(1), uint64(0), uint32(100)), 8192)
	require.EqualValues(t, p9Tread+1, r[4])
	require.Equal(t, "third", string(r[11:]), "the open fid reads the restored directory's file")

	// A device with another tag is not the one the guest knows.
	other, err := NewP9("other", share.NewServer(sh2))
	require.NoError(t, err)
	s := TransportState{Type: TypeP9, Queues: make([]QueueState, 1), Device: json.RawMessage(`{"tag":"kilnshare"}`)}
	require.ErrorContains(t, NewTransport(other, d.mem, d.irq).Restore(s), `the snapshot's had "kilnshare"`)
}
