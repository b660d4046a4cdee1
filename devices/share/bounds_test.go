package share

// Tests of the bounds a guest cannot push the share past
// (docs/reliability.md, "Resource bounds").

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hugelgupf/p9/linux"
	"github.com/stretchr/testify/require"
)

// TestDescriptorBudget: a guest that walks to a file over and over, each
// time to a new fid, holds one host descriptor per fid until the share's
// budget (Share.maxFDs); past it, walks fail with ENFILE, and clunking
// gives the descriptors back.
func TestDescriptorBudget(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	r := newRaw(t, dir, false)
	const budget = 40
	r.srv.share.maxFDs = r.srv.share.fds.Load() + budget
	fid := uint32(1)
	for ; fid <= 10*budget; fid++ {
		if rt, _ := r.rpc(tWalk, 0, fid, []string{"f"}); rt == rLerror {
			break
		}
	}
	require.EqualValues(t, budget+1, fid, "walks until the budget is spent")
	require.Equal(t, linux.ENFILE, r.fail(tWalk, 0, fid, []string{"f"}))
	require.LessOrEqual(t, r.srv.share.fds.Load(), r.srv.share.maxFDs)
	r.ok(tClunk, 1)
	r.ok(tWalk, 0, fid, []string{"f"})
}

// TestPendingXattrBound: the values Txattrcreate makes the library buffer
// are bounded per value (xattrMax) and over a session (maxPending): the
// guest's seventeenth 64 KiB value, on fids of its own, is refused.
func TestPendingXattrBound(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	r := newRaw(t, dir, false)
	r.ok(tWalk, 0, 1, []string{"f"})
	n := maxPending / xattrMax
	for i := 0; i < n; i++ {
		r.ok(tWalk, 1, uint32(10+i), []string{})
		r.ok(tXattrcreate, uint32(10+i), "user.v", uint64(xattrMax), 0)
	}
	r.ok(tWalk, 1, 9, []string{})
	require.Equal(t, linux.ENOSPC, r.fail(tXattrcreate, 9, "user.v", uint64(xattrMax), 0))
	// A clunk ends an unfinished value (EINVAL: it had no bytes) and
	// gives its room back.
	require.Equal(t, linux.EINVAL, r.fail(tClunk, 10))
	r.ok(tXattrcreate, 9, "user.v", uint64(xattrMax), 0)
}
