// Package kvmtest holds helpers for tests that need /dev/kvm.
package kvmtest

import (
	"testing"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// MustHaveKVM skips the test, saying why in capital letters, when /dev/kvm
// cannot be opened or lacks what kiln needs. Where KVM works it does
// nothing: such tests then always run.
func MustHaveKVM(t testing.TB) {
	t.Helper()
	s, err := kvm.Open()
	if err != nil {
		t.Skipf("SKIPPED, NO KVM: %v: this test boots a real guest and did not run", err)
	}
	s.Close()
}
