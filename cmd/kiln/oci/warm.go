package oci

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/warm"
)

// The warm snapshot of the OCI VM shape (shape.go). Every container's VM
// has that shape, so one snapshot serves them all: it is taken by the
// first container on the machine (a cold boot, paused when the guest's
// init is ready for its job), kept in the warm cache beside kiln run
// --warm's (vmm/warm: keyed by the shape, the kiln build and the host,
// locked while it is taken, taken again when stale), and every container
// after that is restored from it, its own directories put behind the 9P
// devices and its own socket path given to the vsock device. The guest
// resumes reading its job, which is the container.

// WarmBuilder builds container VMs from the warm snapshot in cache,
// taking it first with child if need be. The child's words go to
// child.Stderr, kept out of the container's stderr; its error, if it
// fails, is the snapshot's reason.
func WarmBuilder(cache warm.Cache, child *warm.Child) Builder {
	return func(cfg *config.Config, opt machine.Options) (VM, error) {
		m, err := cache.Start(cfg, opt, func(s config.Shape, dir string) error {
			return takeSnapshot(child, s, dir)
		}, nil)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}

// takeSnapshot boots a VM of the shape s with every share slot backed by
// an empty directory, a socket path and taps of its own (the parts of
// the shape each container has of its own), and snapshots it into dir.
func takeSnapshot(child *warm.Child, s config.Shape, dir string) error {
	tmp, err := os.MkdirTemp("", "kiln-oci-snapshot-")
	if err != nil {
		return fmt.Errorf("take the OCI snapshot: %w", err)
	}
	defer os.RemoveAll(tmp)
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o555); err != nil {
		return fmt.Errorf("take the OCI snapshot: %w", err)
	}
	shape := s
	shape.Shares = EmptyShares(empty)
	shape.Vsock = &config.Vsock{CID: GuestCID, Path: filepath.Join(tmp, "v")}
	// A network device without a tap: the child gives it one connected
	// to nothing (machine.TakeSnapshot); each container brings its own.
	shape.Nets = make([]config.Net, len(s.Nets))
	return child.Take(shape, dir)
}
