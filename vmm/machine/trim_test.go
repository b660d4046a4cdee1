package machine

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBinaryRanges(t *testing.T) {
	maps := `00400000-00a00000 r-xp 00000000 fd:01 123 /usr/bin/kiln
00a00000-00f00000 r--p 00600000 fd:01 123 /usr/bin/kiln
00f00000-00f40000 rw-p 00b00000 fd:01 123 /usr/bin/kiln
00f40000-00f80000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fd:01 456 /usr/bin/kiln-other
7fff0000-7fff1000 rw-p 00000000 00:00 0 [stack]
garbage line
zz-00 r--p 0 0 0 /usr/bin/kiln
`
	require.Equal(t, []textRange{{0x400000, 0xa00000}, {0xa00000, 0xf00000}}, binaryRanges(maps, "/usr/bin/kiln"),
		"the binary's read-only mappings, not its data, not another file's")
	require.Empty(t, binaryRanges(maps, "/bin/sh"))
}

// TestTrimStartup drops this test binary's own start-up pages: the
// process goes on running (its code faults back in), which is what the
// VMM relies on.
func TestTrimStartup(t *testing.T) {
	rs := startupPages()
	exe, err := os.Readlink("/proc/self/exe")
	require.NoError(t, err)
	require.NotEmpty(t, rs, "the read-only mappings of %s", exe)
	trimStartup(rs)
	require.NotEmpty(t, startupPages(), "the process runs on after the trim")
}
