package virtio

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/tap"
)

// fakeTap is one end of a SOCK_SEQPACKET pair, which keeps frame
// boundaries as a tap does; the test holds the other end as "the host".
func fakeTap(t *testing.T) (*tap.Tap, int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	require.NoError(t, unix.SetNonblock(fds[0], true))
	t.Cleanup(func() { unix.Close(fds[1]) })
	return tap.FromFD("fake0", fds[0]), fds[1]
}

func netDriver(t *testing.T) (*fakeDriver, int) {
	tp, host := fakeTap(t)
	n, err := NewNet(tp, net.HardwareAddr{2, 0, 0, 0, 0, 7})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	d := newDriver(t, n)
	d.setup(16, 0)
	return d, host
}

func TestNetConfigHasMAC(t *testing.T) {
	d, _ := netDriver(t)
	mac := make([]byte, 6)
	for i := range mac {
		b := []byte{0}
		d.tr.Read(RegConfig+uint64(i), b)
		mac[i] = b[0]
	}
	require.Equal(t, []byte{2, 0, 0, 0, 0, 7}, mac)
	_, err := NewNet(nil, net.HardwareAddr{1, 2})
	require.Error(t, err)
}

func TestNetTransmit(t *testing.T) {
	d, host := netDriver(t)
	hdr := make([]byte, NetHeaderLen)
	frame := []byte("an ethernet frame from the guest")
	// Transmit is queue 1: submit on it by hand.
	txDesc, txAvail, txUsed := d.desc+0x4000, d.avail+0x4000, d.used+0x4000
	a1, a2 := d.alloc(hdr, 0), d.alloc(frame, 0)
	d.putDesc(txDesc, 0, a1, NetHeaderLen, descFNext, 1)
	d.putDesc(txDesc, 1, a2, uint32(len(frame)), 0, 0)
	binary.LittleEndian.PutUint16(d.raw[txAvail+4:], 0)
	store16(d.raw[txAvail+2:], 1)
	d.tr.Kick(netTxQueue)

	got := make([]byte, 2048)
	require.NoError(t, unix.SetNonblock(host, false))
	unix.SetsockoptTimeval(host, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	k, err := unix.Read(host, got)
	require.NoError(t, err)
	require.Equal(t, append(hdr, frame...), got[:k], "header and frame in one write")
	require.Eventually(t, func() bool { return load16(d.raw[txUsed+2:]) == 1 }, testWait, pollEvery)
}

func TestNetReceive(t *testing.T) {
	d, host := netDriver(t)
	a := d.submit(buf{n: 1514 + NetHeaderLen, write: true})
	frame := append(make([]byte, NetHeaderLen), []byte("a frame from the host")...)
	_, err := unix.Write(host, frame)
	require.NoError(t, err)
	head, n := d.wait()
	require.Zero(t, head)
	require.EqualValues(t, len(frame), n)
	got := d.raw[a[0] : a[0]+uint64(n)]
	require.Equal(t, uint16(1), binary.LittleEndian.Uint16(got[10:]), "num_buffers")
	require.True(t, bytes.HasSuffix(got, []byte("a frame from the host")))
	require.Eventually(t, func() bool { return d.irq.Count() > 0 }, time.Second, pollEvery)
}

func TestNetBadTransmitNeedsReset(t *testing.T) {
	d, _ := netDriver(t)
	txDesc, txAvail := d.desc+0x4000, d.avail+0x4000
	d.putDesc(txDesc, 0, d.alloc([]byte{1, 2}, 0), 2, 0, 0) // shorter than a header
	store16(d.raw[txAvail+2:], 1)
	d.tr.Kick(netTxQueue)
	d.waitNeedsReset()
}
