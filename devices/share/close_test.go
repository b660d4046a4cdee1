package share

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/stretchr/testify/require"
)

// TestCloseWhileBusy: the VM ends (the device manager closes the share)
// while the guest's requests are still being served, as at a teardown
// where the device's reset does not wait for them. Every request either
// completes or is refused with EIO: none runs on a closed descriptor
// (EBADF), or on one the host has already given to another file (the
// race detector sees that as Close racing a request's reopen). The
// share's descriptors close once the last user is done.
func TestCloseWhileBusy(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("contents"), 0o644))
	r := newRaw(t, dir, false) // a session, with the root attached as fid 0
	sh := r.srv.share

	var stop atomic.Bool
	var served, refused atomic.Int64
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			fid, tag := uint32(100+g), uint16(100+g)
			for !stop.Load() {
				// Walk, open (a reopen through /proc/self/fd), read,
				// clunk: the calls that use the share's descriptors.
				for _, m := range [][]byte{
					enc(tWalk, tag, uint32(0), fid, []string{"f"}),
					enc(tLopen, tag, fid, uint32(0)),
					enc(tRead, tag, fid, uint64(0), uint32(64)),
					enc(tClunk, tag, fid),
				} {
					resp := r.srv.Handle(m, 1<<16)
					if resp[4] != rLerror {
						served.Add(1)
						continue
					}
					errno := linux.Errno(binary.LittleEndian.Uint32(resp[hdrLen:]))
					if errno != linux.EIO {
						errs <- errno
						return
					}
					refused.Add(1)
					r.srv.Handle(enc(tClunk, tag, fid), 1<<16) // if the walk made it
					break
				}
			}
		}(g)
	}
	require.Eventually(t, func() bool { return served.Load() > 200 }, 10*time.Second, time.Millisecond)
	require.NoError(t, sh.Close())
	require.Eventually(t, func() bool { return refused.Load() > 0 || len(errs) > 0 }, 10*time.Second, time.Millisecond,
		"requests after Close are refused")
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a request failed with %v, not EIO: it used a closed descriptor", err)
	}

	// A request after Close is refused, whatever it is.
	typ, body := r.send(enc(tWalk, 1, uint32(0), uint32(7), []string{"f"}), 1<<16)
	require.EqualValues(t, rLerror, typ)
	require.Equal(t, linux.EIO, linux.Errno(binary.LittleEndian.Uint32(body)))

	// The session still holds the share; once it ends, so do the
	// share's descriptors.
	sh.useMu.Lock()
	require.NotEqual(t, -1, sh.proc, "closed under the session")
	sh.useMu.Unlock()
	r.srv.Reset()
	require.Eventually(t, func() bool {
		sh.useMu.Lock()
		defer sh.useMu.Unlock()
		return sh.root == -1 && sh.proc == -1 && sh.users == 0
	}, 10*time.Second, time.Millisecond, "closed once the session ended")
}
