package virtio

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices"
	"github.com/kiln-vmm/kiln/vmm/memory"
)

// txRing is the driver's side of a network device's transmit queue in
// a fakeDriver's memory (setup puts queue 1 0x4000 above queue 0).
type txRing struct {
	d   *fakeDriver
	idx uint16
}

// send transmits frame behind a zero virtio_net_hdr, in a chain of two
// descriptors.
func (r *txRing) send(frame []byte) {
	d := r.d
	desc, avail := d.desc+0x4000, d.avail+0x4000
	i := (2 * r.idx) % d.size
	d.putDesc(desc, i, d.alloc(make([]byte, NetHeaderLen), 0), NetHeaderLen, descFNext, i+1)
	d.putDesc(desc, i+1, d.alloc(frame, 0), uint32(len(frame)), 0, 0)
	binary.LittleEndian.PutUint16(d.raw[avail+4+2*uint64(r.idx%d.size):], i)
	r.idx++
	store16(d.raw[avail+2:], r.idx) // atomically, as publish does: it orders the entry and descriptors before it
	d.tr.Kick(netTxQueue)
}

// hostRead reads one frame from the host's end of a fake tap, or returns
// nil if none comes within the timeout.
func hostRead(t *testing.T, host int, usec int64) []byte {
	t.Helper()
	require.NoError(t, unix.SetNonblock(host, false))
	require.NoError(t, unix.SetsockoptTimeval(host, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: usec % 1e6, Sec: usec / 1e6}))
	b := make([]byte, 4096)
	n, err := unix.Read(host, b)
	if err != nil {
		return nil
	}
	return b[:n]
}

func configMAC(d *fakeDriver) net.HardwareAddr {
	mac := make([]byte, 6)
	d.tr.Read(RegConfig, mac)
	return mac
}

// TestNetSnapshotOnANewTap: a network device saved in the middle of its
// rings is restored on another back end with another MAC address. The
// rings go on where they were, the receive buffer the guest had posted
// takes the new back end's first frame, transmitted frames reach the new
// back end and not the old, and the new MAC address is served.
func TestNetSnapshotOnANewTap(t *testing.T) {
	d, oldHost := netDriver(t)
	tx := &txRing{d: d}
	frame := func(s string) []byte { return append(make([]byte, NetHeaderLen), s...) }

	// Some traffic both ways before the snapshot.
	tx.send([]byte("before, from the guest"))
	require.Equal(t, frame("before, from the guest"), hostRead(t, oldHost, 5e6))
	d.submit(buf{n: 1514 + NetHeaderLen, write: true})
	_, err := unix.Write(oldHost, frame("before, from the host"))
	require.NoError(t, err)
	d.wait()
	// A receive buffer the device holds, waiting for a frame, when the
	// snapshot is taken.
	pending := d.submit(buf{n: 1514 + NetHeaderLen, write: true})

	d.tr.Pause()
	saved, err := d.tr.Save()
	require.NoError(t, err)
	var dev netState
	require.NoError(t, json.Unmarshal(saved.Device, &dev))
	require.Equal(t, netState{Features: (&Net{}).Features(), MAC: "02:00:00:00:00:07"}, dev)

	newTap, newHost := fakeTap(t)
	newMAC := net.HardwareAddr{2, 0, 0, 0, 0, 8}
	clone, err := NewNet(newTap, newMAC)
	require.NoError(t, err)
	t.Cleanup(func() { clone.Close() })
	restoreInto(t, d, clone)

	// The rings are as they were.
	d.tr.Pause()
	again, err := d.tr.Save()
	require.NoError(t, err)
	require.Equal(t, saved.Queues, again.Queues)
	require.Equal(t, saved.DriverFeatures, again.DriverFeatures)
	require.Equal(t, saved.Status, again.Status)
	require.NoError(t, d.tr.Restore(again)) // and on it goes

	require.Equal(t, newMAC, configMAC(d), "the MAC given at restore")

	_, err = unix.Write(newHost, frame("after, from the new host"))
	require.NoError(t, err)
	head, n := d.wait()
	require.EqualValues(t, 1, head, "the buffer posted before the snapshot (descriptor 1)")
	require.EqualValues(t, len(frame("after, from the new host")), n)
	require.Equal(t, []byte("after, from the new host"), d.raw[pending[0]+NetHeaderLen:pending[0]+uint64(n)])

	tx.send([]byte("after, from the guest"))
	require.Equal(t, frame("after, from the guest"), hostRead(t, newHost, 5e6))
	require.Nil(t, hostRead(t, oldHost, 2e5), "nothing reaches the old back end")
}

func TestNetRestoreRefuses(t *testing.T) {
	tp, _ := fakeTap(t)
	n, err := NewNet(tp, net.HardwareAddr{2, 0, 0, 0, 0, 1})
	require.NoError(t, err)
	defer n.Close()
	tr := NewTransport(n, memory.FromBytes(make([]byte, 4096)), &devices.CountingInterrupt{})
	s := TransportState{Type: TypeNet, Queues: make([]QueueState, 2)}

	s.Device = json.RawMessage(`{"features":1152921504606846976,"mac":"02:00:00:00:00:01"}`) // bit 60
	require.ErrorContains(t, tr.Restore(s), "offered features 0x1000000000000000 that this one does not")
	s.Device = json.RawMessage(`[`)
	require.ErrorContains(t, tr.Restore(s), "network device state")
}
