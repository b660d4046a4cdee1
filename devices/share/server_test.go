package share

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// These tests speak 9P to a Server message by message, as the virtio
// device does, including messages no well-behaved client sends.

const (
	oRDWR      = 2
	xattrRepl  = 2
	lockWrite  = 1
	lockUnlock = 2
)

func TestXattrsServedByKiln(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	if err := unix.Setxattr(filepath.Join(dir, "f"), "user.host", []byte("h"), 0); err != nil {
		t.Skipf("the host file system has no user xattrs: %v", err)
	}
	r := newRaw(t, dir, false)
	r.ok(tWalk, 0, 1, []string{"f"})

	// Set: Txattrcreate on a clone, the value in Twrites, Tclunk applies it.
	r.ok(tWalk, 1, 2, []string{})
	r.ok(tXattrcreate, 2, "user.kiln", uint64(5), 0)
	r.ok(tWrite, 2, uint64(0), 5, []byte("value"))
	r.ok(tClunk, 2)
	buf := make([]byte, 16)
	n, err := unix.Getxattr(filepath.Join(dir, "f"), "user.kiln", buf)
	require.NoError(t, err)
	require.Equal(t, "value", string(buf[:n]))

	// Get: Txattrwalk gives the size, Tread the value.
	for range 50 {
		body := r.ok(tXattrwalk, 1, 3, "user.kiln")
		require.EqualValues(t, 5, binary.LittleEndian.Uint64(body))
		body = r.ok(tRead, 3, uint64(0), 100)
		require.Equal(t, "value", string(body[4:]))
		r.ok(tClunk, 3)
	}
	// The walked fid and its parent still work: with the library's own
	// Txattrwalk, clunking fid 3 would have closed fid 1's file.
	r.ok(tGetattr, 1, uint64(0x7ff))
	r.ok(tWalk, 0, 4, []string{"f"})
	r.ok(tClunk, 4)

	// List: the user.* names, each ending in NUL.
	body := r.ok(tXattrwalk, 1, 3, "")
	size := binary.LittleEndian.Uint64(body)
	body = r.ok(tRead, 3, uint64(0), uint32(size))
	require.ElementsMatch(t, []string{"user.host", "user.kiln"}, strings.Split(strings.TrimSuffix(string(body[4:]), "\x00"), "\x00"))
	r.ok(tClunk, 3)

	require.Equal(t, linux.ENODATA, r.fail(tXattrwalk, 1, 3, "user.none"))
	require.Equal(t, linux.ENODATA, r.fail(tXattrwalk, 1, 3, "security.capability"))
	require.Equal(t, linux.EBADF, r.fail(tXattrwalk, 77, 3, "user.kiln"), "unknown fid")
	require.Equal(t, linux.EINVAL, r.fail(tXattrwalk, 1, 1, "user.kiln"), "newfid in use")

	// Other namespaces cannot be set; sizes are bounded.
	r.ok(tWalk, 1, 2, []string{})
	r.ok(tXattrcreate, 2, "security.capability", uint64(1), 0)
	r.ok(tWrite, 2, uint64(0), 1, []byte{1})
	require.Equal(t, linux.EOPNOTSUPP, r.fail(tClunk, 2))
	r.ok(tWalk, 1, 2, []string{})
	require.Equal(t, linux.E2BIG, r.fail(tXattrcreate, 2, "user.big", uint64(1<<20), 0))

	// Remove: a zero-size replace.
	r.ok(tXattrcreate, 2, "user.kiln", uint64(0), xattrRepl)
	r.ok(tClunk, 2)
	_, err = unix.Getxattr(filepath.Join(dir, "f"), "user.kiln", buf)
	require.ErrorIs(t, err, unix.ENODATA)
	require.Zero(t, r.strays())
}

func TestLocksAndGetlock(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	r := newRaw(t, dir, false)
	for fid := uint32(1); fid <= 2; fid++ {
		r.ok(tWalk, 0, fid, []string{"f"})
		r.ok(tLopen, fid, oRDWR)
	}
	lock := func(fid uint32, typ uint8) uint8 {
		return r.ok(tLock, fid, typ, uint32(0), uint64(0), uint64(0), uint32(fid), "guest")[0]
	}
	getlock := func(fid uint32) uint8 {
		return r.ok(tGetlock, fid, uint8(lockWrite), uint64(0), uint64(0), uint32(fid), "guest")[0]
	}
	require.EqualValues(t, 0, lock(1, lockWrite), "OK")
	require.EqualValues(t, 1, lock(2, lockWrite), "BLOCKED: kiln never waits for a lock")
	require.EqualValues(t, lockWrite, getlock(2), "fid 1's write lock would block")
	require.EqualValues(t, 0, lock(1, lockUnlock))
	require.EqualValues(t, lockUnlock, getlock(2), "nothing would block")
	require.EqualValues(t, 0, lock(2, lockWrite))
	// Clunking the fid releases its lock.
	r.ok(tClunk, 2)
	require.EqualValues(t, 0, lock(1, lockWrite))
	// A lock on a fid that is not open.
	r.ok(tWalk, 0, 3, []string{"f"})
	require.Equal(t, linux.EBADF, r.fail(tLock, 3, uint8(lockWrite), uint32(0), uint64(0), uint64(0), 1, "g"))
}

func TestMalformedMessagesGetRlerror(t *testing.T) {
	dir := t.TempDir()
	r := newRaw(t, dir, false)
	long := enc(tWalk, 9, 0, 1, []string{"a"})
	for _, tc := range []struct {
		name string
		msg  []byte
		tag  uint16
		want linux.Errno
	}{
		{"empty", nil, noTag, linux.EINVAL},
		{"short header", []byte{7, 0, 0}, noTag, linux.EINVAL},
		{"size below the header", []byte{3, 0, 0, 0, tClunk, 5, 0, 0, 0, 0, 0}, 5, linux.EINVAL},
		{"size past the buffer", append([]byte{200, 0, 0, 0, tClunk, 6, 0}, 0, 0, 0, 0), 6, linux.EINVAL},
		{"truncated fid", enc(tClunk, 7, uint16(0)), 7, linux.EINVAL},
		{"string past the end", enc(tWalk, 8, 0, 1, uint16(1), uint16(500)), 8, linux.EINVAL},
		{"walk cut short", long[:len(long)-1], 9, linux.EINVAL},
		{"17 names", enc(tWalk, 10, 0, 1, make([]string, 17)), 10, linux.EINVAL},
		{"write count not the data", enc(tWrite, 11, 0, uint64(0), 10, []byte("abc")), 11, linux.EINVAL},
		{"attach missing n_uname", enc(tAttach, 12, 5, uint32(noFID), "u", ""), 12, linux.EINVAL},
		{"unknown type", enc(255, 13, 0), 13, linux.ENOSYS},
		{"a reply type", enc(tVersion+1, 14, 8192, "9P2000.L"), 14, linux.ENOSYS},
		{"the library's own extension", enc(tUcreate, 15, 0, "x", 0, 0, 0, 0), 15, linux.ENOSYS},
		{"Tauth", enc(tAuth, 16, 1, "u", "", 0), 16, linux.ENOSYS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.srv.Handle(tc.msg, 1<<16)
			require.Len(t, resp, rlerrorLen)
			require.EqualValues(t, rLerror, resp[4])
			require.Equal(t, tc.tag, binary.LittleEndian.Uint16(resp[5:]))
			require.Equal(t, tc.want, linux.Errno(binary.LittleEndian.Uint32(resp[hdrLen:])))
		})
	}
	// The session goes on, and every library reply matched its request.
	r.ok(tGetattr, 0, uint64(0x7ff))
	require.Zero(t, r.strays())
}

func TestAbsurdSizes(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), make([]byte, 1<<20), 0o644))
	r := newRaw(t, dir, false)
	r.ok(tWalk, 0, 1, []string{"f"})
	r.ok(tLopen, 1, 0)

	// A read of 4 GiB gets at most msize, and at most the room.
	body := r.ok(tRead, 1, uint64(0), uint32(0xffffffff))
	require.EqualValues(t, 64<<10-ioHdrLen, binary.LittleEndian.Uint32(body))
	r.tag++
	typ, body := r.send(enc(tRead, r.tag, 1, uint64(0), uint32(0xffffffff)), ioHdrLen+5)
	require.EqualValues(t, tRead+1, typ)
	require.EqualValues(t, 5, binary.LittleEndian.Uint32(body))
	// A readdir likewise.
	r.ok(tWalk, 0, 2, []string{})
	r.ok(tLopen, 2, 0)
	r.tag++
	typ, _ = r.send(enc(tReaddir, r.tag, 2, uint64(0), uint32(0xffffffff)), 100)
	require.EqualValues(t, tReaddir+1, typ)

	// A message larger than msize.
	require.Equal(t, linux.EMSGSIZE, r.fail(tWrite, 1, uint64(0), 70000, make([]byte, 70000)))
	// A reply larger than the room: Rlerror(ERANGE) instead.
	require.NoError(t, os.Symlink(strings.Repeat("t", 1000), filepath.Join(dir, "l")))
	r.ok(tWalk, 0, 3, []string{"l"})
	r.tag++
	typ, body = r.send(enc(tReadlink, r.tag, 3), 64)
	require.EqualValues(t, rLerror, typ)
	require.Equal(t, linux.ERANGE, linux.Errno(binary.LittleEndian.Uint32(body)))
	// No room for even an Rlerror: nothing (the device fails the chain).
	require.Nil(t, r.srv.Handle(enc(tClunk, 1, 3), rlerrorLen-1))

	// msize games: too small is refused, too large is cut.
	require.Equal(t, linux.EINVAL, r.fail(tVersion, uint32(0), "9P2000.L"))
	require.Equal(t, linux.EINVAL, r.fail(tVersion, uint32(100), "9P2000.L"))
	body = r.ok(tVersion, uint32(0xffffffff), "9P2000.L")
	require.EqualValues(t, MaxMsize, binary.LittleEndian.Uint32(body))
	require.Zero(t, r.strays())
}

func TestFidsAndSessions(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644))
	r := newRaw(t, dir, false)
	require.Equal(t, linux.EBADF, r.fail(tGetattr, 99, uint64(0x7ff)), "unknown fid")
	r.ok(tWalk, 0, 1, []string{"f"})
	require.Equal(t, linux.EINVAL, r.fail(tRead, 1, uint64(0), 10), "read before open")
	r.ok(tClunk, 1)
	require.Equal(t, linux.EBADF, r.fail(tWalk, 1, 2, []string{}), "walking a clunked fid")
	require.Equal(t, linux.EBADF, r.fail(tClunk, 1), "clunking it again")
	require.Equal(t, linux.EINVAL, r.fail(tWalk, 0, 2, []string{".."}))
	require.Equal(t, linux.EINVAL, r.fail(tWalk, 0, 2, []string{"a/b"}))
	require.Equal(t, linux.ENOENT, r.fail(tWalk, 0, 2, []string{"nothing"}))
	for i := range 100 { // answered by kiln: the library would remember each name
		require.Equal(t, linux.ENOENT, r.fail(tUnlinkat, 0, fmt.Sprintf("missing-%d", i), 0))
	}
	require.Equal(t, linux.EINVAL, r.fail(tUnlinkat, 0, "../f", 0))
	require.Equal(t, linux.EBADF, r.fail(tUnlinkat, 77, "f", 0))

	// A Tversion starts over: the old fids are gone.
	r.ok(tVersion, uint32(8192), "9P2000.L")
	require.Equal(t, linux.EBADF, r.fail(tGetattr, 0, uint64(0x7ff)))
	r.ok(tAttach, 0, uint32(noFID), "root", "", 0)
	// A version the library does not speak leaves no session.
	typ, body := r.rpc(tVersion, uint32(8192), "9P2000")
	require.EqualValues(t, tVersion+1, typ)
	require.Equal(t, "unknown", string(body[6:]))
	require.Equal(t, linux.EINVAL, r.fail(tGetattr, 0, uint64(0x7ff)))
	// A reset likewise; then the share's files are all closed.
	r.ok(tVersion, uint32(8192), "9P2000.L")
	r.ok(tAttach, 0, uint32(noFID), "root", "", 0)
	r.ok(tWalk, 0, 1, []string{"f"})
	r.ok(tLopen, 1, 0)
	require.Positive(t, r.srv.share.fds.Load())
	r.srv.Reset()
	require.Equal(t, linux.EINVAL, r.fail(tAttach, 0, uint32(noFID), "root", "", 0))
	require.Eventually(t, func() bool { return r.srv.share.fds.Load() == 0 }, 5*time.Second, time.Millisecond,
		"a reset closes every file of the session")
}

func TestRepeatedTagsAndFlush(t *testing.T) {
	dir := t.TempDir()
	r := newRaw(t, dir, false)
	// Virtio matches replies by chain, so a guest may have one tag in
	// flight many times; each request still gets its own reply.
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := r.srv.Handle(enc(tWalk, 7, 0, uint32(100+i), []string{}), 1024)
			if resp[4] != tWalk+1 || binary.LittleEndian.Uint16(resp[5:]) != 7 {
				t.Errorf("reply %v", resp)
			}
		}()
	}
	wg.Wait()
	for i := range 32 {
		r.ok(tClunk, uint32(100+i))
	}
	// Flushing a tag not in flight answers at once.
	r.ok(tFlush, uint16(4242))
	require.Zero(t, r.strays())
}

func TestCreatedFilesBelongToTheGuestUser(t *testing.T) {
	dir := t.TempDir()
	// The server gives a file to its user as the host would let kiln:
	// with CAP_CHOWN, which root has.
	probe := filepath.Join(dir, "probe")
	require.NoError(t, os.WriteFile(probe, nil, 0o600))
	if err := unix.Lchown(probe, 1000, 100); err != nil {
		t.Skipf("giving files to another user needs CAP_CHOWN (root): %v", err)
	}
	require.NoError(t, os.Remove(probe))
	r := newRaw(t, dir, false)
	r.ok(tAttach, 5, uint32(noFID), "alice", "", 1000)
	r.ok(tWalk, 5, 6, []string{})
	r.ok(tLcreate, 6, "mine", oRDWR, 0o640, 100)
	r.ok(tMkdir, 5, "dir", 0o750, 100)
	r.ok(tSymlink, 5, "link", "mine", 100)
	r.ok(tMknod, 5, "fifo", uint32(syscall.S_IFIFO|0o600), 0, 0, 100)
	for name, perm := range map[string]os.FileMode{"mine": 0o640, "dir": 0o750, "link": 0o777, "fifo": 0o600} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		require.EqualValues(t, 1000, st.Uid, name)
		require.EqualValues(t, 100, st.Gid, name)
		require.Equal(t, perm, fi.Mode().Perm(), name)
	}
	// Root's attach (n_uname 0) makes root's files.
	r.ok(tLcreate, 0, "roots", oRDWR, 0o600, 0)
	fi, err := os.Stat(filepath.Join(dir, "roots"))
	require.NoError(t, err)
	require.EqualValues(t, 0, fi.Sys().(*syscall.Stat_t).Uid)
}
