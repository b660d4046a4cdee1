package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// TestGuestPVMVectorState checks that under kvm-pvm a Go program in the
// guest finds no AVX or AVX-512 usable. There user mode's CPUID and
// XGETBV are the host CPU's, and the guest kernel's FXSAVE does not save
// those registers, so they leak from one guest process into another
// (docs/pvm.md); kiln's guest-wide GODEBUG keeps the Go runtime off them.
func TestGuestPVMVectorState(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	if !kvm.IsPVM() {
		t.Skip("SKIP: the host's KVM is not kvm-pvm: the guest kernel saves every vector register with XSAVE, and kiln sets no GODEBUG")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "cpufeatures"), "./testdata/cpufeatures")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	r := kiln(t, "", "run", "--kernel", k, "--initrd", i, "--share", dir+":/t,ro", "--", "/t/cpufeatures")
	logConsole(t, r)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "avx=false avx2=false avx512f=false avx512vl=false", strings.TrimSpace(lastLine(r.stdout)))
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
