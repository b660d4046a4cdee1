package kvmtest

import (
	"os"
	"path/filepath"
	"testing"
)

// GuestFiles returns the guest kernel and initramfs that make builds
// (bin/vmlinux, bin/initramfs.cpio at the top of the tree), for a test
// that boots a real guest. It skips where MustHaveKVM does, and with
// -short; where KVM works, a missing file is a failure, not a skip.
func GuestFiles(t testing.TB) (kernel, initrd string) {
	t.Helper()
	MustHaveKVM(t)
	if testing.Short() {
		t.Skip("SKIPPED with -short: boots a real guest")
	}
	root, err := topOfTree()
	if err != nil {
		t.Fatalf("find the top of the tree: %v", err)
	}
	kernel = filepath.Join(root, "bin", "vmlinux")
	initrd = filepath.Join(root, "bin", "initramfs.cpio")
	for _, p := range []string{kernel, initrd} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run `make` first (KVM is available, so this test must run)", p)
		}
	}
	return kernel, initrd
}

// topOfTree is the directory of go.mod above the test's own.
func topOfTree() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
