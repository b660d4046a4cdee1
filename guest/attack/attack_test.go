package main

import (
	"math/rand/v2"
	"testing"
)

func TestParseWindow(t *testing.T) {
	w, err := parseWindow("4K@0xd0001000:6")
	if err != nil || w.base != 0xd0001000 || w.size != 4096 || w.irq != 6 {
		t.Fatalf("got %+v, %v", w, err)
	}
	if w.where() != "mmio 0xd0001000-0xd0001fff" {
		t.Fatalf("where %q", w.where())
	}
	for _, bad := range []string{"", "4K", "4K@0xd0000000", "xK@0x0:1", "4K@zz:1", "4K@0x0:x"} {
		if _, err := parseWindow(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestWanted(t *testing.T) {
	for _, c := range []struct {
		name string
		take []string
		want bool
	}{
		{"block vda", []string{"vda"}, true},
		{"block vdb", []string{"vda"}, false},
		{"block vdb", []string{"block"}, true},
		{"9p kiln0", []string{"9p:kiln0"}, true},
		{"9p kiln1", []string{"9p:kiln0"}, false},
		{"9p kiln1", []string{"9p"}, true},
		{"rng", []string{"all"}, true},
		{"vsock", []string{"rng", "vsock"}, true},
		{"net", []string{"vsock"}, false},
	} {
		if got := (&window{name: c.name}).wanted(c.take); got != c.want {
			t.Errorf("%s with -take %v: %v", c.name, c.take, got)
		}
	}
}

// TestSafeI8042NeverResets: no byte the attacker sends the i8042 pulses
// the reset line: on port 0x64 a command 0xF0-0xFF with bit 0 clear, on
// port 0x60 an output-port byte with bit 0 clear (after command 0xD1).
func TestSafeI8042NeverResets(t *testing.T) {
	for v := 0; v < 256; v++ {
		if c := safeI8042(0x64, byte(v)); c >= 0xf0 && c&1 == 0 {
			t.Errorf("command %#x goes out as %#x", v, c)
		}
		if d := safeI8042(0x60, byte(v)); d&1 == 0 {
			t.Errorf("data %#x goes out as %#x", v, d)
		}
		if o := safeI8042(0x3f8, byte(v)); o != byte(v) {
			t.Errorf("another port's byte %#x changed", v)
		}
	}
}

func TestGranted(t *testing.T) {
	for _, c := range []struct {
		port uint16
		n    int
		want bool
	}{
		{0x3f8, 1, true}, {0x3ff, 1, true}, {0x3fe, 4, true}, // serial, then 0x400 (granted: none)
		{0x60, 1, true}, {0x60, 2, false}, // 0x61 is the PIT's
		{0x440, 4, true}, {0x446, 4, true}, {0x40, 1, false}, {0x20, 1, false},
	} {
		if got := granted(c.port, c.n); got != c.want {
			t.Errorf("granted(%#x, %d) = %v", c.port, c.n, got)
		}
	}
}

// TestSameSeedSameSteps: the steps a seed draws do not depend on the
// devices' answers: two generators from one seed draw the same.
func TestSameSeedSameSteps(t *testing.T) {
	a := rand.New(rand.NewPCG(42, 42^0x6b696c6e))
	b := rand.New(rand.NewPCG(42, 42^0x6b696c6e))
	at1, at2 := &attacker{rnd: a}, &attacker{rnd: b}
	for i := 0; i < 200; i++ {
		m1 := at1.p9Message(uint16(i))
		m2 := at2.p9Message(uint16(i))
		if string(m1) != string(m2) {
			t.Fatalf("message %d differs", i)
		}
	}
}

func TestMessages(t *testing.T) {
	m := p9Version(7, 8192, "9P2000.L")
	if len(m) != 4+1+2+4+2+8 || m[4] != p9Tversion || le.Uint32(m) != uint32(len(m)) || le.Uint16(m[5:]) != 7 {
		t.Fatalf("Tversion % x", m)
	}
	h := vsockHdr(3, 2, 1234, 5000, vsockOpRequest, 0, 64<<10, 0, 0)
	if len(h) != vsockHdrLen || le.Uint64(h[8:]) != 2 || le.Uint32(h[20:]) != 5000 || le.Uint16(h[30:]) != vsockOpRequest {
		t.Fatalf("vsock header % x", h)
	}
}
