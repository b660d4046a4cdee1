package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// The warm snapshot of the OCI VM shape (oci/shape.go). Every container's
// VM has that shape, so one snapshot serves them all: it is taken by the
// first container on the machine (a cold boot, paused when the guest's
// init is ready for its job), kept in the warm cache beside kiln run
// --warm's (warm.go: keyed by the kernel, initramfs, kiln build and host,
// locked while it is taken, taken again when stale), and every container
// after that is restored from it, its own directories put behind the 9P
// devices and its own socket path given to the vsock device. The guest
// resumes reading its job, which is the container.

// ociMachine builds cfg's VM (the shape, with the container's shares,
// vsock path and job) from the warm snapshot, taking it first if need be.
func ociMachine(cfg *config.Config, opt machine.Options) (*machine.Machine, error) {
	if os.Getenv("KILN_CACHE") == "" {
		if _, err := os.UserCacheDir(); err != nil {
			// containerd's shim may run kiln without HOME.
			os.Setenv("KILN_CACHE", "/var/cache/kiln")
		}
	}
	dir, err := warmDir(ociShapeKey(cfg))
	if err != nil {
		return nil, err
	}
	return restoreOrTake(dir, cfg, opt, func(string) error {
		return takeOCISnapshot(cfg, dir, opt.Seccomp)
	})
}

// ociShapeKey is the shape as the warm cache keys it: the per-container
// parts (directories, socket path, job) left out, so that every
// container finds the same snapshot.
func ociShapeKey(cfg *config.Config) *config.Config {
	k := oci.ShapeConfig(cfg.Kernel, cfg.Initrd, oci.EmptyShares("/"), "oci")
	return k
}

// takeOCISnapshot boots a VM of the shape, with every share slot empty,
// and snapshots it into dir. A kiln snapshot child process takes it (as
// for kiln run --warm: the filters of the snapshot's VM would stay on
// this process); its output is kept out of the container's stderr and
// given back in the error if it fails.
func takeOCISnapshot(cfg *config.Config, dir string, mode seccomp.Mode) error {
	tmp, err := os.MkdirTemp("", "kiln-oci-snapshot-")
	if err != nil {
		return fmt.Errorf("take the OCI snapshot: %w", err)
	}
	defer os.RemoveAll(tmp)
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o555); err != nil {
		return fmt.Errorf("take the OCI snapshot: %w", err)
	}
	shape := oci.ShapeConfig(cfg.Kernel, cfg.Initrd, oci.EmptyShares(empty), filepath.Join(tmp, "v"))
	var out bytes.Buffer
	if err := snapshotChild(shape, dir, mode, &out); err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			lines := strings.Split(msg, "\n")
			return fmt.Errorf("take the OCI snapshot: %s", strings.TrimPrefix(lines[len(lines)-1], "kiln: "))
		}
		return fmt.Errorf("take the OCI snapshot: %w", err)
	}
	// Read back what was written, once, before any VM relies on it (as
	// kiln run --warm does).
	if err := machine.VerifyMemory(dir); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("take the OCI snapshot: %w", err)
	}
	return nil
}
