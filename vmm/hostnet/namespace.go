package hostnet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ErrNoNamespace says a network namespace path does not exist.
var ErrNoNamespace = errors.New("network namespace does not exist")

// InNamespace runs f on a thread in the network namespace the file at
// path names (/run/netns/NAME, /proc/PID/ns/net), and returns f's error.
// The calling goroutine, its thread and every other thread stay where
// they are. f must not start goroutines that expect to be in the
// namespace: only f's own goroutine is.
func InNamespace(path string, f func() error) error {
	target, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNoNamespace, path)
	}
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()

	done := make(chan error, 1)
	go func() {
		// Locked until the thread is back in its own namespace; if that
		// cannot be done, the goroutine ends locked, and Go ends the
		// thread with it instead of giving it to other goroutines.
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open this thread's network namespace: %w", err)
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			if errors.Is(err, unix.EINVAL) {
				err = fmt.Errorf("%w (not a network namespace?)", err)
			}
			done <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		err = f()
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil && sameFile(own, "/proc/thread-self/ns/net") {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// sameFile says whether the file at path is f (the same device and
// inode): for namespace files, the same namespace.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}
