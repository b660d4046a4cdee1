package virtio

import (
	"encoding/binary"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// quiet is how long a paused device is watched for doing nothing.
const quiet = 50 * time.Millisecond

// TestPauseResumeGoesOn: a paused device takes nothing from its queue and
// writes nothing to guest memory; resumed, it serves what the driver
// made available meanwhile, and goes on where it was.
func TestPauseResumeGoesOn(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(8, 0)
	defer d.tr.Reset()
	for i := 0; i < 3; i++ {
		d.submit(buf{n: 4, write: true})
		d.wait()
	}
	d.tr.Pause()
	require.True(t, d.tr.Paused())
	d.submit(buf{n: 4, write: true})
	time.Sleep(quiet)
	require.EqualValues(t, 3, load16(d.raw[d.used+2:]), "nothing served while paused")
	require.NoError(t, d.tr.Resume())
	require.False(t, d.tr.Paused())
	_, n := d.wait()
	require.EqualValues(t, 4, n)
	for i := 0; i < 10; i++ { // round the ring and past it
		d.submit(buf{n: 4, write: true})
		d.wait()
	}
	require.Zero(t, d.r32(RegStatus)&StatusDeviceNeedsReset)
	require.NoError(t, d.tr.Resume(), "resuming a device that is not paused does nothing")
}

// TestPauseKeepsAFailure: a device that asked for a reset stays stopped
// after a pause, until the driver resets it.
func TestPauseKeepsAFailure(t *testing.T) {
	d := newDriver(t, NewRNG())
	d.setup(8, 0)
	d.putDesc(d.desc, 0, 0, 4, descFNext|descFWrite, 0) // a loop
	d.next = 1
	d.publish(0)
	d.waitNeedsReset()
	d.tr.Pause()
	require.NoError(t, d.tr.Resume())
	require.NotZero(t, d.r32(RegStatus)&StatusDeviceNeedsReset)
	d.w32(RegStatus, 0)
	require.Zero(t, d.r32(RegStatus))
}

// TestP9PauseHoldsReplies: a 9P request still running on the host when the
// VM pauses finishes during the pause; its reply stays out of guest
// memory until the device resumes, and then reaches the guest. The
// session is kept (the server is not reset).
func TestP9PauseHoldsReplies(t *testing.T) {
	srv := &fakeP9{block: make(chan struct{})}
	d := p9Driver(t, srv)
	defer d.tr.Reset()
	a := d.submit(buf{data: p9msg(1, 1, uint8(0xb1))}, buf{n: 64, write: true})
	require.Eventually(t, func() bool { return srv.inFlight.Load() == 1 }, testWait, pollEvery)
	d.tr.Pause()
	close(srv.block)
	require.Eventually(t, func() bool { return srv.inFlight.Load() == 0 }, testWait, pollEvery)
	d.submit(buf{data: p9msg(1, 2, uint8(9))}, buf{n: 64, write: true}) // waits for the resume
	time.Sleep(quiet)
	require.Zero(t, load16(d.raw[d.used+2:]), "no reply while paused")
	require.Zero(t, srv.resets.Load(), "the session stays")

	require.NoError(t, d.tr.Resume())
	head, n := d.wait()
	require.EqualValues(t, 0, head, "the held reply first")
	require.EqualValues(t, 11, n)
	require.EqualValues(t, 0xb1, d.raw[a[1]+7])
	head, _ = d.wait()
	require.EqualValues(t, 2, head, "then the request made during the pause")
}

// TestVsockPauseTellsTheGuest: the socket device's connections are host
// sockets, which do not pause; a pause ends them, and once resumed the
// device tells the guest (TRANSPORT_RESET on the event queue), as after a
// restore, and takes new connections.
func TestVsockPauseTellsTheGuest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.sock")
	host, err := net.Listen("unix", path+"_5000")
	require.NoError(t, err)
	defer host.Close()
	v, err := NewVsock(3, path)
	require.NoError(t, err)
	defer v.Close()
	d := newDriver(t, v)
	d.setup(16, 0)
	defer d.w32(RegStatus, 0)
	rx, tx, ev := ring(d, 0), ring(d, 1), ring(d, vsockEventQueue)

	tx.add(buf{data: vsockHdr(1234, 5000, vsockOpRequest, 0, nil)})
	conn, err := host.Accept()
	require.NoError(t, err)
	defer conn.Close()
	op, _ := recvPacket(t, rx)
	require.EqualValues(t, vsockOpResponse, op)

	d.tr.Pause()
	conn.SetReadDeadline(time.Now().Add(testWait))
	_, err = conn.Read(make([]byte, 1))
	require.Error(t, err, "the host side of the connection is closed")
	a := ev.add(buf{n: 8, write: true})
	require.NoError(t, d.tr.Resume())
	ev.wait(t)
	require.EqualValues(t, vsockEventTransportReset, binary.LittleEndian.Uint32(d.raw[a[0]:]))

	tx.add(buf{data: vsockHdr(1235, 5000, vsockOpRequest, 0, nil)})
	conn2, err := host.Accept()
	require.NoError(t, err)
	defer conn2.Close()
	op, _ = recvPacket(t, rx)
	require.EqualValues(t, vsockOpResponse, op, "a new connection after the resume")
}
