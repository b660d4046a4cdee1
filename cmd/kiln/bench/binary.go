package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The VMMs under test run from a private copy of kiln's binary, not from
// the binary this benchmark runs from. A running kiln pages out what its
// start-up touched of its binary (vmm/machine/trim.go) with
// MADV_PAGEOUT, and the kernel leaves a page that another process maps
// too: the benchmark's own process, started from the same file, maps
// most of the same code (the Go runtime, the standard library) for as
// long as it runs, and would keep those pages resident in every VMM it
// measures. Measured on kvm-pvm, the same restored VM showed 9.7 MiB of
// VMM overhead started from the benchmark's binary and 3.2 MiB from a
// copy: the copy is what a host without a benchmark running sees. VMMs
// started together (the density runs) share the copy with each other,
// as VMs on one host share kiln's binary.

// privateCopy copies the binary at path into dir and returns the copy's
// path. The copy is synced: MADV_PAGEOUT reclaims clean file pages only,
// and pages just written stay dirty until writeback.
func privateCopy(path, dir string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("copy the kiln binary for the VMMs: %w", err)
	}
	defer src.Close()
	dst := filepath.Join(dir, "kiln")
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return "", fmt.Errorf("copy the kiln binary for the VMMs: %w", err)
	}
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("copy the kiln binary for the VMMs to %s: %w", dst, err)
	}
	return dst, nil
}
