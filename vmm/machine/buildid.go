package machine

import (
	"bytes"
	"encoding/binary"
)

// The Go linker puts an ELF note at the start of every binary's text:
// namesz 4, descsz N, type 4 (ELF_NOTE_GOBUILDID_TAG), the name "Go\0\0",
// then N bytes of build ID, "ACTION/CONTENT" hashes of the build's inputs
// and output (cmd/go/internal/work/buildid.go). `go tool buildid` prints
// it. A rebuild from other sources gets another ID.

// buildIDSearch is how much of the binary's start is searched for it.
const buildIDSearch = 64 << 10

var goNoteName = []byte("Go\x00\x00")

// goBuildID finds the Go build ID note in b, the start of an ELF binary.
func goBuildID(b []byte) (string, bool) {
	for off := 0; ; {
		i := bytes.Index(b[off:], goNoteName)
		if i < 0 {
			return "", false
		}
		at := off + i
		off = at + 1
		if at < 12 {
			continue
		}
		hdr := b[at-12 : at]
		namesz := binary.LittleEndian.Uint32(hdr[0:])
		descsz := binary.LittleEndian.Uint32(hdr[4:])
		typ := binary.LittleEndian.Uint32(hdr[8:])
		if namesz != 4 || typ != 4 || descsz == 0 || descsz > 512 {
			continue
		}
		start := at + 4
		if start+int(descsz) > len(b) {
			return "", false
		}
		return string(b[start : start+int(descsz)]), true
	}
}
