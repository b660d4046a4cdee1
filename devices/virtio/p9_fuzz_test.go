package virtio

import (
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/share"
)

// FuzzP9Request puts arbitrary bytes, cut into T-messages by their size
// fields, through a virtio-9p device that serves a real directory
// (devices/share), after a session is set up: fid 0 the root, fid 1 the
// open file "file", fid 2 the directory "sub", fid 3 a symlink to a marker
// outside the root. Every chain must come back with a well-formed reply
// that fits its room, the device must not fail, and nothing outside the
// root may be touched (inotify watches the marker and its directory).
func FuzzP9Request(f *testing.F) {
	f.Add(p9msg(p9Tread, 1, uint32(1), uint64(0), uint32(100)))
	f.Add(p9msg(p9Twalk, 1, uint32(0), uint32(9), []string{"link", "marker"}))
	f.Add(p9msg(p9Twalk, 1, uint32(2), uint32(9), []string{"..", "..", "outside"}))
	f.Add(append(p9msg(14, 1, uint32(2), "new", uint32(2), uint32(0o644), uint32(0)), // Tlcreate
		p9msg(118, 2, uint32(2), uint64(0), uint32(1), uint8('x'))...)) // Twrite
	f.Add(p9msg(74, 1, uint32(0), "file", uint32(3), "stolen")) // Trenameat into the link
	f.Add(p9msg(26, 1, uint32(3), uint32(1), uint32(0o777), uint32(0), uint32(0),
		uint64(0), uint64(0), uint64(0), uint64(0), uint64(0))) // Tsetattr chmod on the link
	f.Add(p9msg(p9Tversion, 1, uint32(1), "9P2000.L"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		base := t.TempDir()
		outside, root := filepath.Join(base, "outside"), filepath.Join(base, "root")
		marker := filepath.Join(outside, "marker")
		require.NoError(t, os.MkdirAll(outside, 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
		require.NoError(t, os.WriteFile(marker, []byte("secret"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(root, "file"), []byte("inside"), 0o644))
		require.NoError(t, os.Symlink("../outside/marker", filepath.Join(root, "link")))
		require.NoError(t, os.Symlink(outside, filepath.Join(root, "sub", "up")))
		t.Cleanup(func() { // whatever modes the guest set, let the test clean up
			filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					os.Chmod(p, 0o755)
				}
				return nil
			})
		})
		var before unix.Stat_t
		require.NoError(t, unix.Lstat(marker, &before))
		in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		require.NoError(t, err)
		defer unix.Close(in)
		for _, p := range []string{outside, marker} {
			_, err := unix.InotifyAddWatch(in, p, unix.IN_ALL_EVENTS)
			require.NoError(t, err)
		}

		sh, err := share.New(root, false)
		require.NoError(t, err)
		defer sh.Close()
		d := p9Driver(t, share.NewServer(sh))
		for _, m := range [][]byte{
			p9msg(p9Tversion, 0xffff, uint32(8192), "9P2000.L"),
			p9msg(p9Tattach, 1, uint32(0), uint32(p9NoFID), "root", "", uint32(0)),
			p9msg(p9Twalk, 1, uint32(0), uint32(1), []string{"file"}),
			p9msg(p9Tlopen, 1, uint32(1), uint32(2)),
			p9msg(p9Twalk, 1, uint32(0), uint32(2), []string{"sub"}),
			p9msg(p9Twalk, 1, uint32(0), uint32(3), []string{"link"}),
		} {
			require.NotEqualValues(t, p9Rlerror, d.p9rpc(m, 4096)[4])
		}

		for i := 0; len(data) > 0 && i < 8; i++ {
			n := len(data)
			if n >= 4 {
				if s := int(binary.LittleEndian.Uint32(data)); s >= 7 && s <= n {
					n = s
				}
			}
			m := data[:n]
			data = data[n:]
			r := d.p9rpc(m, 4096)
			require.GreaterOrEqual(t, len(r), 7, "a reply for every chain")
			require.EqualValues(t, len(r), binary.LittleEndian.Uint32(r), "its size field is its length")
			if len(m) >= 7 {
				require.Equal(t, m[5:7], r[5:7], "the reply carries the request's tag")
			}
		}
		require.Zero(t, d.r32(RegStatus)&StatusDeviceNeedsReset, "well-formed chains never fail the device")

		buf := make([]byte, 1024)
		if _, err := unix.Read(in, buf); err != unix.EAGAIN {
			t.Fatalf("something outside the root was touched (%v)", err)
		}
		var after unix.Stat_t
		require.NoError(t, unix.Lstat(marker, &after))
		require.Equal(t, before.Mtim, after.Mtim)
		require.Equal(t, before.Ctim, after.Ctim)
		ents, err := os.ReadDir(outside)
		require.NoError(t, err)
		require.Len(t, ents, 1)
	})
}
