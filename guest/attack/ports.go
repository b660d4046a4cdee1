package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// The I/O ports kiln emulates, and some it does not (an access there is a
// VM exit that kiln answers as a bus with nothing on it: reads float to
// all ones, writes vanish). Ports KVM emulates in the kernel (PIC, PIT,
// the speaker port 0x61) are not kiln's and would break the guest: they
// are left alone.
type portRange struct {
	name       string
	base, size uint16
}

var portRanges = []portRange{
	{"serial", 0x3f8, 8},
	{"i8042", 0x60, 1},
	{"i8042", 0x62, 3},
	{"signal", 0x440, 8},
	// nothing there, as far as kiln is concerned
	{"none", 0x400, 8}, // just past the serial port
	{"none", 0x438, 8}, // just before the signal device
	{"none", 0x448, 8}, // just after it
	{"none", 0x2f8, 8}, // COM2
	{"none", 0x3e8, 8}, // COM3
	{"none", 0x378, 8}, // LPT1
	{"none", 0x510, 12},
	{"none", 0x70, 2}, // CMOS
	{"none", 0xcf8, 8},
}

// i8042 reset: command 0xFE (or any of 0xF0-0xFF with bit 0 clear) on port
// 0x64, or an output-port write (command 0xD1) of a byte with bit 0 clear
// on port 0x60, pulse the CPU's reset line: the VM ends. The attacker
// never sends one: the test must see the guest end the VM on request.
func safeI8042(port uint16, v byte) byte {
	if port == 0x60 || (port == 0x64 && v >= 0xf0) {
		return v | 1
	}
	return v
}

// grantPorts asks for every port in portRanges.
func grantPorts() error {
	for _, r := range portRanges {
		if err := ioperm(r.base, r.size); err != nil {
			return err
		}
	}
	return nil
}

// granted reports whether [p, p+n) is all ports the attacker may touch.
func granted(p uint16, n int) bool {
	for i := 0; i < n; i++ {
		ok := false
		for _, r := range portRanges {
			if p+uint16(i) >= r.base && p+uint16(i) < r.base+r.size {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// serialState is what the guest's 8250 driver set in the UART, which the
// attacker restores after a burst on its registers.
type serialState struct{ lcr, ier, mcr, scr, dll, dlm byte }

func saveSerial() serialState {
	var s serialState
	s.lcr = inb(0x3fb)
	outb(0x3fb, s.lcr|0x80)
	s.dll, s.dlm = inb(0x3f8), inb(0x3f9)
	outb(0x3fb, s.lcr&^0x80)
	s.ier, s.mcr, s.scr = inb(0x3f9), inb(0x3fc), inb(0x3ff)
	return s
}

func (s serialState) restore() {
	outb(0x3fb, 0x80)
	outb(0x3f8, s.dll)
	outb(0x3f9, s.dlm)
	outb(0x3fb, s.lcr&^0x80)
	outb(0x3fc, s.mcr)
	outb(0x3ff, s.scr)
	outb(0x3f9, s.ier)
	outb(0x3fb, s.lcr)
}

// portAttack makes a burst of accesses to one of the ranges: any width,
// any value, string I/O. A burst on the serial port first lets the
// console's output drain (nothing of the attacker's own may be in flight
// while it loops the UART back or changes its line settings) and puts the
// driver's settings back after.
func (at *attacker) portAttack() string {
	r := at.rnd
	pr := portRanges[r.IntN(len(portRanges))]
	n := 1 + r.IntN(32)
	if pr.name == "serial" {
		unix.IoctlSetInt(1, unix.TCSBRK, 1) // tcdrain
		s := saveSerial()
		defer s.restore()
	}
	done := 0
	for i := 0; i < n; i++ {
		size := 1 << r.IntN(3)
		p := pr.base + uint16(r.IntN(int(pr.size)))
		if r.IntN(4) == 0 {
			p -= uint16(r.IntN(4)) // straddling the range's start, perhaps
		}
		write, v := r.IntN(2) == 0, r.Uint32()
		str := r.IntN(8) == 0
		if !granted(p, size) {
			continue
		}
		done++
		switch {
		case str:
			b := make([]byte, 1+r.IntN(64))
			if !write {
				portStringIn(p, b)
				break
			}
			for j := range b {
				b[j] = safeI8042(p, byte(r.Uint32()))
			}
			portStringOut(p, b)
		case write:
			if size == 1 {
				v = uint32(safeI8042(p, byte(v)))
			}
			portWrite(p, size, v)
		default:
			portRead(p, size)
		}
	}
	return fmt.Sprintf("%d accesses to %s ports %#x-%#x", done, pr.name, pr.base, pr.base+pr.size-1)
}

// mmioHole is device memory with nothing behind it as far as kiln is
// concerned: windows past the last virtio device, the gap between the
// end of RAM and the MMIO area, addresses further up. Each mapping is two
// pages, so accesses can straddle pages (KVM splits them).
type mmioHole struct {
	base uint64
	m    []byte
}

// holes maps the places mmioAttack pokes at.
func (at *attacker) holes() []mmioHole {
	r := at.rnd
	last := at.ws[len(at.ws)-1]
	end := last.base + last.size
	var bases []uint64
	if last.taken {
		bases = append(bases, last.base) // straddles into the first empty window
	}
	for i := 0; i < 4; i++ {
		bases = append(bases, end+uint64(r.IntN(16))*pageSize)
	}
	if at.ramEnd < 0xd0000000 {
		bases = append(bases, at.ramEnd&^(pageSize-1))
		for i := 0; i < 2; i++ {
			bases = append(bases, at.ramEnd+uint64(r.Uint64N((0xd0000000-at.ramEnd)/pageSize-2))*pageSize)
		}
	}
	for i := 0; i < 2; i++ {
		lo := end + 32*pageSize
		bases = append(bases, lo+r.Uint64N((0xfec00000-lo)/pageSize-2)*pageSize)
	}
	var hs []mmioHole
	for _, b := range bases {
		m, err := mapPhys(b, 2*pageSize, true)
		if err != nil {
			at.logf("cannot map %#x: %v", b, err)
			continue
		}
		hs = append(hs, mmioHole{b, m})
	}
	return hs
}

// mmioAttack makes a burst of accesses to device memory no device holds.
func (at *attacker) mmioAttack() string {
	r := at.rnd
	if len(at.holeMaps) == 0 {
		return "no holes mapped"
	}
	h := at.holeMaps[r.IntN(len(at.holeMaps))]
	n := 1 + r.IntN(32)
	for i := 0; i < n; i++ {
		size := 1 << r.IntN(4)
		off := r.IntN(2*pageSize - size + 1)
		if r.IntN(2) == 0 {
			off = pageSize - r.IntN(size) // straddle the pages
		}
		if r.IntN(2) == 0 {
			mmioRead(h.m, off, size)
		} else {
			mmioWrite(h.m, off, size, r.Uint64())
		}
	}
	return fmt.Sprintf("%d accesses around %#x", n, h.base)
}
