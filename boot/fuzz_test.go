package boot

import (
	"errors"
	"testing"
)

// FuzzBzImage feeds arbitrary bytes to the bzImage parser and loader: they
// must return an error or load within guest memory, never panic.
func FuzzBzImage(f *testing.F) {
	f.Add(fakeBzImage(512))
	f.Add(fakeBzImage(0))
	f.Add([]byte("not a kernel"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseBzImage(b)
		if err != nil {
			if !errors.Is(err, ErrNotKernel) {
				t.Fatalf("error does not wrap ErrNotKernel: %v", err)
			}
			return
		}
		if h.SetupSize >= len(b) {
			t.Fatalf("setup size %d not inside file of %d", h.SetupSize, len(b))
		}
		_, _ = LoadBzImage(newMem(4<<20), b, []byte("initrd"), 10)
	})
}

// FuzzPVH does the same for ELF vmlinux parsing and the PVH note walk.
func FuzzPVH(f *testing.F) {
	f.Add(fakeVmlinux(1<<20, []byte{0x90}, 16, 1<<20))
	f.Add(fakeVmlinux(1<<20, []byte{0x90}, 0, 0))
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParsePVH(b); err != nil {
			if !errors.Is(err, ErrNotKernel) {
				t.Fatalf("error does not wrap ErrNotKernel: %v", err)
			}
			return
		}
		_, _ = LoadPVH(newMem(4<<20), b, []byte("initrd"))
	})
}

// FuzzPVHNote walks arbitrary note sections.
func FuzzPVHNote(f *testing.F) {
	f.Add([]byte{4, 0, 0, 0, 4, 0, 0, 0, 18, 0, 0, 0, 'X', 'e', 'n', 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) { findPVHNote(b) })
}
