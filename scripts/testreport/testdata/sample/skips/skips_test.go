// Package skips has tests that skip, for reasons to group.
package skips

import "testing"

func needKVM(t *testing.T) {
	t.Helper()
	t.Skipf("SKIPPED, NO KVM: %v: this test boots a real guest and did not run", "open /dev/kvm: no such file or directory")
}

func TestGuestA(t *testing.T)    { needKVM(t) }
func TestGuestB(t *testing.T)    { needKVM(t) }
func TestGuestC(t *testing.T)    { t.Log("first a line"); needKVM(t) }
func TestRoot(t *testing.T)      { t.Skip("giving files to another user needs root") }
func TestNoReason(t *testing.T)  { t.SkipNow() }
func TestMultiLine(t *testing.T) { t.Skip("line one\nline two") }
func TestPasses(t *testing.T)    {}

func TestCleanupLogsAfterTheSkip(t *testing.T) {
	t.Cleanup(func() { t.Log("removed the guest's files") })
	needKVM(t)
}
