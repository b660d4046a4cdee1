package trace

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Describer is a device that can say in words what one register access
// did: "THR <- 'h'" from the UART, "reset (command 0xfe: ...)" from the
// i8042. offset is inside the device's window and data is what was
// written or read, as the bus passed them to the device; Describe is
// called right after the access. Devices implement it without importing
// this package, so they stay free of anything but their own hardware.
type Describer interface {
	Describe(offset uint64, write bool, data []byte) string
}

// value reads one access's bytes as the little-endian number the guest
// moved: 0x68 for a byte, 0x0001 for a word.
func value(data []byte) uint64 {
	var b [8]byte
	copy(b[:], data)
	return binary.LittleEndian.Uint64(b[:])
}

// values prints each access of a, with as many hex digits as its size.
func values(a *Access) string {
	if a.Size <= 0 || len(a.Data) < a.Size {
		return "-"
	}
	var s []string
	for i := 0; i+a.Size <= len(a.Data); i += a.Size {
		s = append(s, fmt.Sprintf("%#0*x", 2*a.Size, value(a.Data[i:i+a.Size])))
	}
	return strings.Join(s, " ")
}

// device says which device handled a and what the access did there, in
// the device's words when it is a Describer.
func device(a *Access) string {
	r := a.Device
	if r.Device == nil {
		if a.Write {
			return "no device: write ignored"
		}
		return "no device: reads as all ones"
	}
	d, ok := r.Device.(Describer)
	if !ok || a.Size <= 0 {
		return fmt.Sprintf("%s: offset %#x", r.Name, a.Addr-r.Base)
	}
	var words []string
	for i := 0; i+a.Size <= len(a.Data); i += a.Size {
		words = append(words, d.Describe(a.Addr-r.Base, a.Write, a.Data[i:i+a.Size]))
	}
	return r.Name + ": " + strings.Join(words, "; ")
}
