package virtio

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// vsockRing drives one queue of the fake driver's vsock device: the rings
// of queue q sit at the fake driver's addresses plus q*0x4000.
type vsockRing struct {
	d                 *fakeDriver
	q                 int
	desc, avail, used uint64
	next, idx, seen   uint16
}

func ring(d *fakeDriver, q int) *vsockRing {
	off := uint64(q) * 0x4000
	return &vsockRing{d: d, q: q, desc: d.desc + off, avail: d.avail + off, used: d.used + off}
}

// add publishes one chain of buffers and kicks the queue.
func (r *vsockRing) add(bufs ...buf) []uint64 {
	head := r.next % r.d.size
	var addrs []uint64
	for i, b := range bufs {
		n, flags := len(b.data), uint16(0)
		if b.write {
			n, flags = b.n, descFWrite
		}
		a := r.d.alloc(b.data, n)
		addrs = append(addrs, a)
		i16 := r.next % r.d.size
		r.next++
		if i < len(bufs)-1 {
			flags |= descFNext
		}
		r.d.putDesc(r.desc, i16, a, uint32(n), flags, r.next%r.d.size)
	}
	binary.LittleEndian.PutUint16(r.d.raw[r.avail+4+2*uint64(r.idx%r.d.size):], head)
	r.idx++
	store16(r.d.raw[r.avail+2:], r.idx) // atomic, as publish does
	r.d.tr.Kick(r.q)
	return addrs
}

// wait returns the next used entry's head.
func (r *vsockRing) wait(t *testing.T) uint16 {
	deadline := time.Now().Add(5 * time.Second)
	for load16(r.d.raw[r.used+2:]) == r.seen {
		require.True(t, time.Now().Before(deadline), "queue %d returned nothing (status %#x)", r.q, r.d.tr.Status())
		time.Sleep(time.Millisecond)
	}
	e := r.d.raw[r.used+4+8*uint64(r.seen%r.d.size):]
	r.seen++
	return uint16(binary.LittleEndian.Uint32(e))
}

func vsockHdr(srcPort, dstPort uint32, op uint16, flags uint32, payload []byte) []byte {
	h := make([]byte, vsockHdrLen)
	binary.LittleEndian.PutUint64(h[0:], 3)
	binary.LittleEndian.PutUint64(h[8:], vsockHostCID)
	binary.LittleEndian.PutUint32(h[16:], srcPort)
	binary.LittleEndian.PutUint32(h[20:], dstPort)
	binary.LittleEndian.PutUint32(h[24:], uint32(len(payload)))
	binary.LittleEndian.PutUint16(h[28:], vsockTypeStrm)
	binary.LittleEndian.PutUint16(h[30:], op)
	binary.LittleEndian.PutUint32(h[32:], flags)
	binary.LittleEndian.PutUint32(h[36:], 64<<10)
	return append(h, payload...)
}

// recvPacket gives the device one receive buffer and returns the packet
// it put there.
func recvPacket(t *testing.T, rx *vsockRing) (op uint16, payload []byte) {
	a := rx.add(buf{n: vsockHdrLen + vsockMaxRead, write: true})
	rx.wait(t)
	p := rx.d.raw[a[0]:]
	n := binary.LittleEndian.Uint32(p[24:])
	return binary.LittleEndian.Uint16(p[30:]), append([]byte(nil), p[vsockHdrLen:vsockHdrLen+n]...)
}

func TestVsockGuestConnectsToHost(t *testing.T) {
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
	rx, tx := ring(d, 0), ring(d, 1)

	cfg := make([]byte, 8)
	v.ReadConfig(0, cfg)
	require.EqualValues(t, 3, binary.LittleEndian.Uint64(cfg))

	tx.add(buf{data: vsockHdr(1234, 5000, vsockOpRequest, 0, nil)})
	conn, err := host.Accept()
	require.NoError(t, err)
	defer conn.Close()
	op, _ := recvPacket(t, rx)
	require.EqualValues(t, vsockOpResponse, op)

	tx.add(buf{data: vsockHdr(1234, 5000, vsockOpRW, 0, []byte("hello host\n"))})
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "hello host\n", line)

	conn.Write([]byte("hello guest"))
	op, payload := recvPacket(t, rx)
	require.EqualValues(t, vsockOpRW, op)
	require.Equal(t, "hello guest", string(payload))

	// The host closes: the guest hears that no more data comes.
	conn.Close()
	op, _ = recvPacket(t, rx)
	require.EqualValues(t, vsockOpShutdown, op)
}

func TestVsockHostConnectsToGuest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.sock")
	v, err := NewVsock(3, path)
	require.NoError(t, err)
	defer v.Close()
	d := newDriver(t, v)
	d.setup(16, 0)
	defer d.w32(RegStatus, 0)
	rx, tx := ring(d, 0), ring(d, 1)

	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer c.Close()
	fmt.Fprintf(c, "CONNECT 6000\n")
	a := rx.add(buf{n: vsockHdrLen + vsockMaxRead, write: true})
	rx.wait(t)
	p := d.raw[a[0]:]
	require.EqualValues(t, vsockOpRequest, binary.LittleEndian.Uint16(p[30:]))
	require.EqualValues(t, 6000, binary.LittleEndian.Uint32(p[20:]))
	local := binary.LittleEndian.Uint32(p[16:])

	tx.add(buf{data: vsockHdr(6000, local, vsockOpResponse, 0, nil)})
	br := bufio.NewReader(c)
	ok, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("OK %d\n", local), ok)
	tx.add(buf{data: vsockHdr(6000, local, vsockOpRW, 0, []byte("from guest\n"))})
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "from guest\n", line)
}

func TestVsockRefusals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.sock")
	_, err := NewVsock(2, path)
	require.ErrorIs(t, err, ErrVsock)
	v, err := NewVsock(3, path)
	require.NoError(t, err)
	defer v.Close()
	_, err = NewVsock(4, path)
	require.ErrorIs(t, err, ErrVsock, "the path is taken")

	d := newDriver(t, v)
	d.setup(16, 0)
	defer d.w32(RegStatus, 0)
	rx, tx := ring(d, 0), ring(d, 1)
	// Nobody listens on port 7000: the guest's request is reset.
	tx.add(buf{data: vsockHdr(1, 7000, vsockOpRequest, 0, nil)})
	op, _ := recvPacket(t, rx)
	require.EqualValues(t, vsockOpRST, op)
	// Data for a connection that does not exist is reset too.
	tx.add(buf{data: vsockHdr(1, 7000, vsockOpRW, 0, []byte("x"))})
	op, _ = recvPacket(t, rx)
	require.EqualValues(t, vsockOpRST, op)
	// A header that claims more payload than it carries is malformed.
	bad := vsockHdr(1, 7000, vsockOpRW, 0, nil)
	binary.LittleEndian.PutUint32(bad[24:], 100)
	tx.add(buf{data: bad})
	d.waitNeedsReset()
}
