package main

import (
	"errors"
	"testing"

	"github.com/kiln-vmm/kiln/vmm/config"
)

// FuzzRunFlags: any argument list parses or gives a usage error, never a
// panic.
func FuzzRunFlags(f *testing.F) {
	f.Add("--cpus", "2", "--memory", "1G")
	f.Add("--", "echo", "--memory", "x")
	f.Add("-v", "--boot-time", "stray", "")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		_, _, err := runFlags([]string{a, b, c, d})
		if err != nil && !errors.Is(err, config.ErrUsage) {
			t.Fatalf("%q: error is not a usage error: %v", []string{a, b, c, d}, err)
		}
	})
}
