package share

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/stretchr/testify/require"
)

// serveConn serves srv over a byte stream, as a transport would: it frames
// T-messages by their size, answers each in its own goroutine (so replies
// come out of order, as from the device), and writes the replies back.
func serveConn(srv *Server, conn net.Conn) {
	var wmu sync.Mutex
	for {
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(conn, hdr); err != nil {
			return
		}
		size := binary.LittleEndian.Uint32(hdr)
		if size < hdrLen || size > MaxMsize {
			conn.Close()
			return
		}
		m := make([]byte, size)
		copy(m, hdr)
		if _, err := io.ReadFull(conn, m[4:]); err != nil {
			return
		}
		go func() {
			r := srv.Handle(m, MaxMsize)
			wmu.Lock()
			defer wmu.Unlock()
			conn.Write(r)
		}()
	}
}

// newClient serves dir through the library's own client.
func newClient(t *testing.T, dir string, ro bool) (p9.File, *Server) {
	t.Helper()
	sh, err := New(dir, ro)
	require.NoError(t, err)
	return serveShare(t, sh)
}

// serveShare serves sh through the library's own client.
func serveShare(t *testing.T, sh *Share) (p9.File, *Server) {
	t.Helper()
	srv := NewServer(sh)
	c, s := net.Pipe()
	go serveConn(srv, s)
	client, err := p9.NewClient(c, p9.WithMessageSize(64<<10))
	require.NoError(t, err)
	root, err := client.Attach("")
	require.NoError(t, err)
	t.Cleanup(func() {
		client.Close()
		s.Close()
		srv.Reset()
		sh.Close()
	})
	return root, srv
}

// enc builds a 9P message: fields are uint8, uint16, uint32, uint64,
// string, []string (a walk's names) or []byte (raw bytes).
func enc(typ byte, tag uint16, fields ...any) []byte {
	b := make([]byte, hdrLen)
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
		case int:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
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
		case []byte:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("enc: %T", f))
		}
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// raw speaks 9P to a Server message by message, as the device does.
type raw struct {
	t   *testing.T
	srv *Server
	tag uint16
}

func newRaw(t *testing.T, dir string, ro bool) *raw {
	t.Helper()
	sh, err := New(dir, ro)
	require.NoError(t, err)
	return newRawShare(t, sh)
}

// newRawShare is newRaw for a share already made.
func newRawShare(t *testing.T, sh *Share) *raw {
	t.Helper()
	srv := NewServer(sh)
	t.Cleanup(func() { srv.Reset(); sh.Close() })
	r := &raw{t: t, srv: srv}
	typ, body := r.rpc(tVersion, uint32(64<<10), "9P2000.L")
	require.EqualValues(t, tVersion+1, typ)
	require.Equal(t, "9P2000.L", string(body[6:]))
	r.ok(tAttach, uint32(0), uint32(noFID), "root", "", uint32(0))
	return r
}

// send returns the reply's type and body; the reply must carry the tag.
func (r *raw) send(m []byte, room int) (byte, []byte) {
	r.t.Helper()
	tag := binary.LittleEndian.Uint16(m[5:])
	resp := r.srv.Handle(m, room)
	require.GreaterOrEqual(r.t, len(resp), hdrLen)
	require.LessOrEqual(r.t, len(resp), room, "the reply fits the room")
	require.EqualValues(r.t, len(resp), binary.LittleEndian.Uint32(resp), "the size field is right")
	require.Equal(r.t, tag, binary.LittleEndian.Uint16(resp[5:]), "the reply carries the request's tag")
	return resp[4], resp[hdrLen:]
}

func (r *raw) rpc(typ byte, fields ...any) (byte, []byte) {
	r.t.Helper()
	r.tag++
	return r.send(enc(typ, r.tag, fields...), 1<<20)
}

// ok sends a request that must succeed and returns the reply's body.
func (r *raw) ok(typ byte, fields ...any) []byte {
	r.t.Helper()
	rt, body := r.rpc(typ, fields...)
	if rt == rLerror {
		r.t.Fatalf("type %d: Rlerror %v", typ, linux.Errno(binary.LittleEndian.Uint32(body)))
	}
	require.EqualValues(r.t, typ+1, rt)
	return body
}

// fail sends a request that must fail and returns its errno.
func (r *raw) fail(typ byte, fields ...any) linux.Errno {
	r.t.Helper()
	rt, body := r.rpc(typ, fields...)
	require.EqualValues(r.t, rLerror, rt, "type %d should fail", typ)
	return linux.Errno(binary.LittleEndian.Uint32(body))
}

// strays is how many library replies matched no request (must be 0).
func (r *raw) strays() int {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	if r.srv.sess == nil {
		return 0
	}
	r.srv.sess.mu.Lock()
	defer r.srv.sess.mu.Unlock()
	return r.srv.sess.strays
}
