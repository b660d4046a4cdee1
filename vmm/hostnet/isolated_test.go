package hostnet

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/devices/tap"
)

// TestIsolatedTap: the tap lives in a namespace of its own that nothing
// but its descriptor holds: it is not in the host's namespace, frames
// can be written to it long after it was made (its namespace is alive),
// and every thread is back home.
func TestIsolatedTap(t *testing.T) {
	mustBeRoot(t)
	host := hostLinks(t)
	const name = "kiln-iso0"
	tp, err := IsolatedTap(name)
	require.NoError(t, err)
	defer tp.Close()
	threadsAtHome(t)
	require.Equal(t, host, hostLinks(t), "the host's namespace is unchanged")
	_, err = os.Stat("/sys/class/net/" + name)
	require.ErrorIs(t, err, os.ErrNotExist, "the tap is not in the host's namespace")

	// The namespace outlives the thread that made it: the tap is still
	// up and takes frames (a tap whose namespace was torn down, or that
	// is down, refuses them).
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
	hdr := make([]byte, tap.HeaderLen)
	require.NoError(t, tp.WriteFrame([][]byte{hdr, testFrame(peerMAC, engineMAC, "to nowhere")}))

	// A second one of the same name: another namespace, no clash.
	tp2, err := IsolatedTap(name)
	require.NoError(t, err)
	require.NoError(t, tp2.Close())
	threadsAtHome(t)
}
