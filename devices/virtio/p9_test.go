package virtio

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/devices/share"
)

// The share package's server is what the machine gives the device.
var _ P9Server = (*share.Server)(nil)

// p9msg builds a 9P message: fields are uint8, uint16, uint32, uint64,
// string or []string (a walk's names).
func p9msg(typ byte, tag uint16, fields ...any) []byte {
	b := make([]byte, 7)
	b[4] = typ
	binary.LittleEndian.PutUint16(b[5:], tag)
	for _, f := range fields {
		switch v := f.(type) {
		case uint8:
			b = append(b, v)
		case uint16:
			b = binary.LittleEndian.AppendUint16(b, v)
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, v)
		case uint64:
			b = binary.LittleEndian.AppendUint64(b, v)
		case string:
			b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
			b = append(b, v...)
		case []string:
			b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
			for _, s := range v {
				b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
				b = append(b, s...)
			}
		default:
			panic(fmt.Sprintf("p9msg: %T", f))
		}
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// 9P2000.L message types the tests send.
const (
	p9Rlerror  = 7
	p9Tlopen   = 12
	p9Tversion = 100
	p9Tattach  = 104
	p9Twalk    = 110
	p9Tread    = 116
	p9NoFID    = 0xffffffff
)

// p9rpc sends one request with room bytes for the reply and returns the
// reply as the device wrote it into guest memory.
func (d *fakeDriver) p9rpc(req []byte, room int) []byte {
	a := d.submit(buf{data: req}, buf{n: room, write: true})
	_, n := d.wait()
	require.LessOrEqual(d.t, int(n), room)
	return d.raw[a[1] : a[1]+uint64(n)]
}

func p9Driver(t *testing.T, srv P9Server) *fakeDriver {
	dev, err := NewP9("kilnshare", srv)
	require.NoError(t, err)
	d := newDriver(t, dev)
	d.setup(p9QueueSize, 0)
	return d
}

func TestP9IdentityAndConfig(t *testing.T) {
	dev, err := NewP9("home", &fakeP9{})
	require.NoError(t, err)
	require.Equal(t, "9p", dev.Type().String())
	require.NotZero(t, dev.Features()&p9FMountTag)
	c := make([]byte, 8)
	dev.ReadConfig(0, c)
	require.Equal(t, []byte{4, 0, 'h', 'o', 'm', 'e', 0, 0}, c)
	dev.ReadConfig(3, c[:2])
	require.Equal(t, "om", string(c[:2]))
	dev.ReadConfig(1000, c) // past the end: no panic
	d := newDriver(t, dev)
	require.EqualValues(t, TypeP9, d.r32(RegDeviceID))

	for _, bad := range []string{"", "a\x00b", string(make([]byte, 256))} {
		_, err := NewP9(bad, &fakeP9{})
		require.ErrorIs(t, err, ErrBadMountTag)
	}
}

func TestP9ServesAShareThroughTheQueue(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from the host"), 0o644))
	sh, err := share.New(dir, false)
	require.NoError(t, err)
	t.Cleanup(func() { sh.Close() })
	d := p9Driver(t, share.NewServer(sh))

	r := d.p9rpc(p9msg(p9Tversion, 0xffff, uint32(8192), "9P2000.L"), 8192)
	require.EqualValues(t, p9Tversion+1, r[4])
	require.EqualValues(t, 8192, binary.LittleEndian.Uint32(r[7:]))
	r = d.p9rpc(p9msg(p9Tattach, 1, uint32(0), uint32(p9NoFID), "root", "", uint32(0)), 8192)
	require.EqualValues(t, p9Tattach+1, r[4])
	r = d.p9rpc(p9msg(p9Twalk, 2, uint32(0), uint32(1), []string{"hello.txt"}), 8192)
	require.EqualValues(t, p9Twalk+1, r[4])
	require.EqualValues(t, 1, binary.LittleEndian.Uint16(r[7:]), "one qid")
	r = d.p9rpc(p9msg(p9Tlopen, 3, uint32(1), uint32(0)), 8192)
	require.EqualValues(t, p9Tlopen+1, r[4])

	// Tread, with the reply spread over two writable buffers (as Linux
	// lays out a zero-copy read: the 11-byte header, then the pages).
	a := d.submit(buf{data: p9msg(p9Tread, 4, uint32(1), uint64(0), uint32(4096))},
		buf{n: 11, write: true}, buf{n: 4096, write: true})
	_, n := d.wait()
	require.EqualValues(t, 11+19, n)
	require.EqualValues(t, p9Tread+1, d.raw[a[1]+4])
	require.EqualValues(t, 4, binary.LittleEndian.Uint16(d.raw[a[1]+5:]), "the guest's tag")
	require.EqualValues(t, 19, binary.LittleEndian.Uint32(d.raw[a[1]+7:]))
	require.Equal(t, "hello from the host", string(d.raw[a[2]:a[2]+19]))

	// A malformed message gets Rlerror(EINVAL), with its tag.
	r = d.p9rpc(p9msg(p9Twalk, 5, uint32(0)), 64)
	require.Len(t, r, 11)
	require.EqualValues(t, p9Rlerror, r[4])
	require.EqualValues(t, 5, binary.LittleEndian.Uint16(r[5:]))
	require.EqualValues(t, 22, binary.LittleEndian.Uint32(r[7:]), "EINVAL")
	// So does garbage, and an empty request.
	r = d.p9rpc([]byte("this is not 9P at all"), 64)
	require.EqualValues(t, p9Rlerror, r[4])
	a = d.submit(buf{n: 64, write: true})
	_, n = d.wait()
	require.EqualValues(t, 11, n)
	require.EqualValues(t, p9Rlerror, d.raw[a[0]+4])
	require.Zero(t, d.r32(RegStatus)&StatusDeviceNeedsReset)
}

func TestP9ChainWithoutRoomFailsTheDevice(t *testing.T) {
	for _, room := range []int{0, 10} {
		d := p9Driver(t, &fakeP9{})
		bufs := []buf{{data: p9msg(p9Tversion, 0, uint32(8192), "9P2000.L")}}
		if room > 0 {
			bufs = append(bufs, buf{n: room, write: true})
		}
		d.submit(bufs...)
		d.waitNeedsReset()
	}
}

// fakeP9 is a server that answers every request with an Rlerror carrying
// the request's first byte after the header as its errno, after waiting
// for block if that byte is 0xb1.
type fakeP9 struct {
	block    chan struct{}
	inFlight atomic.Int32
	most     atomic.Int32
	resets   atomic.Int32
}

func (f *fakeP9) Handle(req []byte, room int) []byte {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.most.Load()
		if n <= m || f.most.CompareAndSwap(m, n) {
			break
		}
	}
	if len(req) > 7 && req[7] == 0xb1 {
		<-f.block
	}
	r := make([]byte, 11)
	binary.LittleEndian.PutUint32(r, 11)
	r[4] = p9Rlerror
	copy(r[5:7], req[5:7])
	if len(req) > 7 {
		r[7] = req[7]
	}
	return r
}

func (f *fakeP9) Reset()          { f.resets.Add(1) }
func (f *fakeP9) InSession() bool { return false }

func (f *fakeP9) SaveSession() (json.RawMessage, error) { return nil, nil }
func (f *fakeP9) RestoreSession(json.RawMessage) error  { return nil }

func TestP9SlowRequestDoesNotBlockOthers(t *testing.T) {
	srv := &fakeP9{block: make(chan struct{})}
	d := p9Driver(t, srv)
	d.submit(buf{data: p9msg(1, 1, uint8(0xb1))}, buf{n: 64, write: true}) // blocks
	fast := d.submit(buf{data: p9msg(1, 2, uint8(7))}, buf{n: 64, write: true})
	head, n := d.wait()
	require.EqualValues(t, 2, head, "the second request's chain comes back first")
	require.EqualValues(t, 11, n)
	require.EqualValues(t, 7, d.raw[fast[1]+7])
	close(srv.block)
	head, _ = d.wait()
	require.EqualValues(t, 0, head, "then the slow one")
}

func TestP9BoundsRequestsInFlight(t *testing.T) {
	srv := &fakeP9{block: make(chan struct{})}
	d := p9Driver(t, srv)
	const n = p9MaxInFlight + 8
	for i := range n {
		d.submit(buf{data: p9msg(1, uint16(i), uint8(0xb1))}, buf{n: 16, write: true})
	}
	require.Eventually(t, func() bool { return srv.inFlight.Load() == p9MaxInFlight }, testWait, pollEvery)
	time.Sleep(20 * time.Millisecond)
	require.EqualValues(t, p9MaxInFlight, srv.most.Load(), "no more than p9MaxInFlight at once")
	close(srv.block)
	for range n {
		d.wait()
	}
	require.EqualValues(t, p9MaxInFlight, srv.most.Load())
}

func TestP9ResetDropsLateReplies(t *testing.T) {
	srv := &fakeP9{block: make(chan struct{})}
	d := p9Driver(t, srv)
	d.submit(buf{data: p9msg(1, 1, uint8(0xb1))}, buf{n: 64, write: true})
	require.Eventually(t, func() bool { return srv.inFlight.Load() == 1 }, testWait, pollEvery)
	d.w32(RegStatus, 0) // returns without waiting for the blocked request
	require.EqualValues(t, 1, srv.resets.Load(), "the server's session ended")
	close(srv.block)
	require.Eventually(t, func() bool { return srv.inFlight.Load() == 0 }, testWait, pollEvery)
	time.Sleep(10 * time.Millisecond)
	require.Zero(t, load16(d.raw[d.used+2:]), "the late reply was dropped")
}
