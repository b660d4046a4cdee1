// Package pass has tests that pass, with subtests, one of them skipped.
package pass

import "testing"

func TestOne(t *testing.T) { t.Log("hello from one") }

func TestSubtests(t *testing.T) {
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) { t.Logf("sub %s", name) })
	}
	t.Run("skipped", func(t *testing.T) { t.Skip("SKIPPED, NO KVM: open /dev/kvm: no such file or directory") })
}
