package config

import (
	"errors"
	"testing"
)

// FuzzParseSize: any string parses to a positive size or a usage error.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512M", "2G", "1T", "64", "0", "", "9999999999999999T", "12KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("%q: error is not a usage error: %v", s, err)
			}
			return
		}
		if n == 0 || n > 1<<62 {
			t.Fatalf("%q: size %d out of range", s, n)
		}
	})
}
