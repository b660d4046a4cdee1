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

// FuzzCommandEncoding: every argv survives the trip through the kernel
// command line.
func FuzzCommandEncoding(f *testing.F) {
	f.Add("sh", "-c", "exit 3")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, s := range []string{a, b, c} {
			for i := 0; i < len(s); i++ {
				if s[i] == 0 {
					return // NUL separates arguments; argv cannot contain it
				}
			}
		}
		got, err := DecodeCommand(EncodeCommand([]string{a, b, c}))
		if err != nil || len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
			t.Fatalf("round trip of %q: %q, %v", []string{a, b, c}, got, err)
		}
	})
}
