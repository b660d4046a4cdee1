package machine

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFailureLogKeepsEachDevice: a guest breaks one disk 10,000 times
// and another device once. The machine keeps at most
// maxFailuresPerDevice of each, the first ones and the latest, so the
// other device and the disk's last reason both show, and counts them all.
func TestFailureLogKeepsEachDevice(t *testing.T) {
	var l failureLog
	start := time.Now()
	disk, rng := "mmio 0xd0000000-0xd0000fff", "mmio 0xd0001000-0xd0001fff"
	for i := 0; i < 10000; i++ {
		l.add(DeviceFailure{Device: "virtio-block", Where: disk, At: start.Add(time.Duration(i)), Reason: fmt.Errorf("failure %d", i)})
		if i == 5000 {
			l.add(DeviceFailure{Device: "virtio-rng", Where: rng, At: start.Add(time.Duration(i)), Reason: fmt.Errorf("the rng's")})
		}
	}
	fs, n := l.list()
	require.Equal(t, 10001, n)
	require.Len(t, fs, maxFailuresPerDevice+1)
	var reasons []string
	for i, f := range fs {
		reasons = append(reasons, f.Reason.Error())
		if i > 0 {
			require.False(t, f.At.Before(fs[i-1].At), "in the order they happened")
		}
	}
	require.Equal(t, []string{"failure 0", "failure 1", "failure 2", "the rng's", "failure 9999"}, reasons)
}
