package virtio

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTransportIdentity(t *testing.T) {
	d := newDriver(t, NewRNG())
	require.EqualValues(t, TypeRNG, d.r32(RegDeviceID))
	require.EqualValues(t, vendorID, d.r32(RegVendorID))
	d.w32(RegDeviceFeaturesSel, 1)
	require.EqualValues(t, 1, d.r32(RegDeviceFeatures)&1, "VERSION_1 offered")
	d.w32(RegQueueSel, 5)
	require.Zero(t, d.r32(RegQueueNumMax), "no queue 5")
	require.EqualValues(t, 0xffffffff, d.r32(RegSHMLenLow))
	// Narrow register accesses read zero.
	b := []byte{0xff, 0xff}
	d.tr.Read(RegMagicValue, b)
	require.Equal(t, []byte{0, 0}, b)
}

func TestFeaturesOKRefusedWithoutVersion1OrWithUnknownBits(t *testing.T) {
	for _, want := range []uint64{FeatureIndirectDesc, FeatureVersion1 | 1<<50} {
		d := newDriver(t, NewRNG())
		d.w32(RegStatus, StatusAcknowledge|StatusDriver)
		d.w32(RegDriverFeaturesSel, 0)
		d.w32(RegDriverFeatures, uint32(want))
		d.w32(RegDriverFeaturesSel, 1)
		d.w32(RegDriverFeatures, uint32(want>>32))
		d.w32(RegStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK)
		require.Zero(t, d.r32(RegStatus)&StatusFeaturesOK, "features %#x", want)
	}
}

func TestResetStopsDeviceAndClearsState(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(16, 0)
	d.submit(buf{n: 8, write: true})
	d.wait()
	d.w32(RegStatus, 0)
	require.Zero(t, d.r32(RegStatus))
	require.Zero(t, d.r32(RegInterruptStatus))
	d.w32(RegQueueSel, 0)
	require.Zero(t, d.r32(RegQueueReady))
	// And it can be set up again, on fresh rings as a driver lays them
	// out (Linux allocates them zeroed): an available ring left as it was
	// would offer the old chain again, which the new activation's worker
	// would read while this driver writes its first entry.
	d2 := *d
	d2.seen, d2.idx, d2.next = 0, 0, 0
	clear(d.raw[d.desc : d.used+0x100])
	d2.setup(16, 0)
	d2.submit(buf{n: 8, write: true})
	_, n := d2.wait()
	require.EqualValues(t, 8, n)
}

func TestQueueSetupIgnoredOnceReady(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(16, 0)
	d.w32(RegQueueNum, 4)
	d.w32(RegQueueDescLow, 0xdead000)
	d.submit(buf{n: 4, write: true})
	head, n := d.wait()
	require.Zero(t, head)
	require.EqualValues(t, 4, n)
}

func TestInterruptAck(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(16, FeatureVersion1)
	d.submit(buf{n: 4, write: true})
	d.wait()
	require.Eventually(t, func() bool { return d.r32(RegInterruptStatus)&InterruptUsedBuffer != 0 }, testWait, pollEvery)
	require.Positive(t, d.irq.Count())
	d.w32(RegInterruptACK, InterruptUsedBuffer)
	require.Zero(t, d.r32(RegInterruptStatus))
}
