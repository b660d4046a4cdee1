// Package parallel has parallel tests and subtests whose output interleaves.
package parallel

import (
	"testing"
	"time"
)

func TestParallel(t *testing.T) {
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for i := 0; i < 3; i++ {
				t.Logf("%s step %d", name, i)
				time.Sleep(10 * time.Millisecond)
			}
			if name == "b" {
				t.Skip("SKIPPED: b is not installed")
			}
		})
	}
}

func TestTopA(t *testing.T) { t.Parallel(); time.Sleep(20 * time.Millisecond); t.Log("A done") }
func TestTopB(t *testing.T) { t.Parallel(); t.Log("B done"); t.Error("B broke") }
