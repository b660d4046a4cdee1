package share

import (
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzSetup is what every fuzz input starts from: a session attached at
// fid 0, with fid 1 the open file "file", fid 2 the directory "sub", fid 3
// the link "abs-link" (to the marker outside the root), fid 4 the root
// opened for readdir.
func fuzzSetup(t *testing.T) (*escapeTree, *raw) {
	e := newEscapeTree(t)
	t.Cleanup(func() {
		// Whatever modes the fuzzer set, let the test remove the tree.
		filepath.WalkDir(e.base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	r := newRaw(t, e.root, false)
	r.ok(tWalk, 0, 1, []string{"file"})
	r.ok(tLopen, 1, oRDWR)
	r.ok(tWalk, 0, 2, []string{"sub"})
	r.ok(tWalk, 0, 3, []string{"abs-link"})
	r.ok(tWalk, 0, 4, []string{})
	r.ok(tLopen, 4, 0)
	return e, r
}

// splitMessages cuts a fuzz input into messages by their size fields; what
// does not frame is one last (malformed) message.
func splitMessages(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 && len(out) < 16 {
		n := len(data)
		if len(data) >= 4 {
			if s := int(binary.LittleEndian.Uint32(data)); s >= hdrLen && s <= len(data) {
				n = s
			}
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// cat joins messages into one fuzz input.
func cat(ms ...[]byte) []byte {
	var b []byte
	for _, m := range ms {
		b = append(b, m...)
	}
	return b
}

func fuzzSeeds(f *testing.F) {
	f.Add(enc(tRead, 1, 1, uint64(0), 100))
	f.Add(enc(tReaddir, 1, 4, uint64(0), 1000))
	f.Add(cat(enc(tWalk, 1, 0, 9, []string{"sub"}), enc(tLcreate, 2, 9, "new", oRDWR, 0o644, 0), enc(tWrite, 3, 9, uint64(0), 3, []byte("abc"))))
	f.Add(cat(enc(tXattrwalk, 1, 1, 9, ""), enc(tRead, 2, 9, uint64(0), 100), enc(tClunk, 3, 9)))
	f.Add(cat(enc(tRenameat, 1, 0, "file", 2, "moved"), enc(tUnlinkat, 2, 2, "moved", 0)))
	f.Add(enc(tSetattr, 1, 3, 0x7f, 0o777, 0, 0, uint64(0), uint64(0), uint64(0), uint64(0), uint64(0)))
	f.Add(enc(tWalk, 1, 0, 9, []string{"dir-link", "marker"}))
	f.Add(enc(tLink, 1, 0, 3, "hard"))
	f.Add(enc(tSymlink, 1, 2, "escape", "../../outside/marker", 0))
	f.Add(enc(tMknod, 1, 0, "fifo", 0o10644, 0, 0, 0))
	f.Add(enc(tLock, 1, 1, uint8(1), 0, uint64(0), uint64(0), 1, "c"))
	f.Add(enc(tGetlock, 1, 1, uint8(1), uint64(0), uint64(0), 1, "c"))
	f.Add(enc(tVersion, 1, 0xffffffff, "9P2000.L"))
	f.Add(enc(tFlush, 1, uint16(1)))
	f.Add([]byte{})
}

// FuzzMessages sends arbitrary bytes, as a run of T-messages, to a Server
// on a real tree: every reply must carry its request's tag and fit the
// room, every library reply must match a request, and nothing outside the
// root may be touched.
func FuzzMessages(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, r := fuzzSetup(t)
		sendFuzz(t, e, r, data)
	})
}

// FuzzViewMessages is FuzzMessages on a view that holds the tree's root
// under one name: fid 0 is the view's root, fids 1, 2 and 4 as in
// fuzzSetup but reached through the view.
func FuzzViewMessages(f *testing.F) {
	viewSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzView(t, View{Name: "root"}, []string{"root"}, data) })
}

// FuzzFilesViewMessages is FuzzViewMessages on a view that holds only two
// names of the tree's root.
func FuzzFilesViewMessages(f *testing.F) {
	viewSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzView(t, View{Files: []string{"file", "sub"}}, nil, data) })
}

func viewSeeds(f *testing.F) {
	fuzzSeeds(f)
	f.Add(enc(tWalk, 1, 0, 9, []string{"root", "rel-link"}))
	f.Add(cat(enc(tUnlinkat, 1, 0, "root", 0x200), enc(tReaddir, 2, 4, uint64(1), 1000)))
	f.Add(enc(tXattrwalk, 1, 0, 9, "user.x"))
	f.Add(enc(tGetlock, 1, 4, uint8(1), uint64(0), uint64(0), 1, "c"))
	f.Add(enc(tRenameat, 1, 2, "x", 0, "x"))
}

func fuzzView(t *testing.T, v View, in []string, data []byte) {
	e := newEscapeTree(t)
	sh, err := NewView(e.root, v, false)
	require.NoError(t, err)
	r := newRawShare(t, sh)
	r.ok(tWalk, 0, 1, append(in, "file"))
	r.ok(tLopen, 1, oRDWR)
	r.ok(tWalk, 0, 2, append(in, "sub"))
	r.ok(tWalk, 0, 4, []string{})
	r.ok(tLopen, 4, 0)
	sendFuzz(t, e, r, data)
}

// sendFuzz sends a fuzz input's messages: every reply must carry its
// request's tag and fit the room, every library reply must match a
// request, and nothing outside the tree's root may be touched.
func sendFuzz(t *testing.T, e *escapeTree, r *raw, data []byte) {
	for _, m := range splitMessages(data) {
		room := 8192
		resp := r.srv.Handle(append([]byte(nil), m...), room)
		require.GreaterOrEqual(t, len(resp), hdrLen)
		require.LessOrEqual(t, len(resp), room)
		require.EqualValues(t, len(resp), binary.LittleEndian.Uint32(resp))
		require.Equal(t, tagOf(m), binary.LittleEndian.Uint16(resp[5:]))
	}
	require.Zero(t, r.strays(), "a library reply matched no request")
	e.check(t)
}
