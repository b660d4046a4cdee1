package kvm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// IoctlError records a failed KVM ioctl: which one, on what, and the errno.
// It unwraps to the errno, so errors.Is(err, unix.EINTR) works.
type IoctlError struct {
	Op    string // the ioctl's name, e.g. "KVM_SET_USER_MEMORY_REGION"
	Errno unix.Errno
}

func (e *IoctlError) Error() string { return fmt.Sprintf("%s: %v", e.Op, e.Errno) }
func (e *IoctlError) Unwrap() error { return e.Errno }

// ErrNoKVM says /dev/kvm could not be opened; the cause is wrapped.
var ErrNoKVM = errors.New("KVM is not available")

// ErrMissingCapability says the host's KVM lacks something kiln needs.
var ErrMissingCapability = errors.New("KVM capability missing")
