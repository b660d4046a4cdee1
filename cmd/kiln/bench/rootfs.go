package bench

import (
	"fmt"
	"os"
	"path/filepath"
)

// UnpackRootfs unpacks the initramfs initrd into root as a container's
// root file system: the image the container rows of kiln bench run, and
// the one kiln's OCI tests import into podman. It has the guest's tools in
// /bbin, and the directories a runtime mounts over.
func UnpackRootfs(initrd, root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("make the container rootfs: %w", err)
	}
	f, err := os.Open(initrd)
	if err != nil {
		return fmt.Errorf("unpack the initramfs for the containers: %w", err)
	}
	defer f.Close()
	if err := unpackCpio(f, root); err != nil {
		return fmt.Errorf("unpack the initramfs %s for the containers: %w", initrd, err)
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp", "etc", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("make the container rootfs: %w", err)
		}
	}
	return nil
}
