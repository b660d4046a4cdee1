// Package fails has a test that fails and a subtest that fails.
package fails

import "testing"

func TestFails(t *testing.T) { t.Error("want 1, got 2") }
func TestSubFails(t *testing.T) {
	t.Run("good", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { t.Fatal("broken") })
}
func TestPasses(t *testing.T) {}
