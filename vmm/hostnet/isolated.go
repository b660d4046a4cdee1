package hostnet

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/tap"
)

// IsolatedTap makes a tap called name in a network namespace of its own,
// holding nothing but the tap and a loopback that is down, and returns
// it open and up: a network device for a VM that must have one but needs
// no network. A snapshot's boot is such a VM (machine.TakeSnapshot): the
// guest's driver must find the device, but every VM restored from the
// snapshot brings a tap of its own, so the snapshot's tap is connected
// to nothing. Frames the guest sends there reach a stack with no address
// and are dropped; nothing comes back.
//
// The namespace has no name and no file: the tap's file descriptor
// holds it (a tap's socket keeps its namespace alive), and the kernel
// removes both when the tap is closed or its process dies. Making a
// namespace needs CAP_SYS_ADMIN. Nothing outside the new namespace
// changes, and the calling thread, like every other, stays in its own
// (the same care as InNamespace).
func IsolatedTap(name string) (*tap.Tap, error) {
	type result struct {
		t   *tap.Tap
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // unlocked only once back home (InNamespace)
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("open this thread's network namespace: %w", err)}
			return
		}
		defer own.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("%w (making a network namespace needs root)", err)
			}
			done <- result{err: fmt.Errorf("make a network namespace for tap %s: %w", name, err)}
			return
		}
		t, err := makeUp(name)
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil && sameFile(own, "/proc/thread-self/ns/net") {
			runtime.UnlockOSThread()
		}
		done <- result{t, err}
	}()
	r := <-done
	return r.t, r.err
}

// makeUp makes the tap name in the thread's namespace and brings it up:
// a tap that is down refuses the frames the VMM writes.
func makeUp(name string) (*tap.Tap, error) {
	t, err := tap.Create(name)
	if err != nil {
		return nil, err
	}
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("bring tap %s up: %w", name, err)
	}
	return t, nil
}
