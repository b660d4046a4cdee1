package virtio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzBlockRequest hands the block device's request handler arbitrary
// chains: a header (type, sector) and data cut into buffers as layout
// says, two bytes a buffer (bit 15: device-writable, bits 0-12: size),
// against an image of fuzzBlkSectors sectors. The handler must not panic;
// a chain it accepts gets a defined status byte and never writes past the
// status; the image keeps its size and changes only as a successful
// write, discard or write-zeroes says.
func FuzzBlockRequest(f *testing.F) {
	for _, s := range blockSeeds() {
		f.Add(s.ro, s.typ, s.sector, s.layout, s.data)
	}
	path := filepath.Join(f.TempDir(), "disk.img")
	writeImage(f, path, fuzzBlkSectors*SectorSize)
	rw, err := NewBlock(path, false, "fuzz-disk")
	if err != nil {
		f.Fatal(err)
	}
	ro, err := NewBlock(path, true, "fuzz-disk")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { rw.Close(); ro.Close() })

	f.Fuzz(func(t *testing.T, readOnly bool, typ uint32, sector uint64, layout, data []byte) {
		b := rw
		if readOnly {
			b = ro
		}
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c := blockChain(typ, sector, layout, data)
		payload := flatten(c.Readable)
		in := c.Writable
		written, err := b.handle(c)

		after, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if len(after) != len(before) {
			t.Fatalf("image is %d bytes, was %d", len(after), len(before))
		}
		if err != nil {
			if !errors.Is(err, ErrBadChain) {
				t.Fatalf("error %v does not wrap ErrBadChain", err)
			}
			if len(payload) >= blkHeaderLen && len(in) > 0 && len(in[len(in)-1]) > 0 {
				t.Fatalf("a chain with header and status refused: %v", err)
			}
			if !bytes.Equal(after, before) {
				t.Fatal("a refused chain changed the image")
			}
			return
		}
		last := in[len(in)-1]
		status := last[len(last)-1]
		if status != blkSOK && status != blkSIOErr && status != blkSUnsupp {
			t.Fatalf("status byte %d", status)
		}
		if written < 1 || int(written) > c.WritableLen() {
			t.Fatalf("wrote %d bytes into %d", written, c.WritableLen())
		}
		data = payload[blkHeaderLen:]
		off := sector * SectorSize
		switch {
		case readOnly || (typ != blkTOut && typ != blkTDiscard && typ != blkTWriteZeroes):
			if !bytes.Equal(after, before) {
				t.Fatalf("request type %d (read-only %v) changed the image", typ, readOnly)
			}
		case typ == blkTOut && status == blkSOK:
			want := append([]byte(nil), before...)
			copy(want[off:], data)
			if !bytes.Equal(after, want) {
				t.Fatalf("write of %d bytes at sector %d: image differs", len(data), sector)
			}
		case typ == blkTOut:
			if !bytes.Equal(after, before) {
				t.Fatal("a refused write changed the image")
			}
		case status == blkSOK: // discard or write zeroes: every range reads as zeros
			want := append([]byte(nil), before...)
			for r := data; len(r) >= blkSegmentLen; r = r[blkSegmentLen:] {
				s, n := binary.LittleEndian.Uint64(r), uint64(binary.LittleEndian.Uint32(r[8:]))
				clear(want[s*SectorSize : (s+n)*SectorSize])
			}
			if !bytes.Equal(after, want) {
				t.Fatalf("request type %d: image differs from its ranges zeroed", typ)
			}
		}
		if typ == blkTGetID && written > blkIDLen+1 {
			t.Fatalf("get ID wrote %d bytes", written)
		}
		if typ == blkTIn && status == blkSOK {
			got := flatten(in)
			got = got[:len(got)-1]
			if int(written) != len(got)+1 || !bytes.Equal(got, before[off:off+uint64(len(got))]) {
				t.Fatalf("read of %d bytes at sector %d: wrong data or length %d", len(got), sector, written)
			}
		}
	})
}

const fuzzBlkSectors = 8

// blockChain builds a request chain: the readable bytes are the 16-byte
// header followed by data (then zeros), the writable buffers are filled
// with 0xaa, and layout gives each buffer's size and direction.
func blockChain(typ uint32, sector uint64, layout, data []byte) *Chain {
	stream := make([]byte, blkHeaderLen, blkHeaderLen+len(data))
	binary.LittleEndian.PutUint32(stream, typ)
	binary.LittleEndian.PutUint64(stream[8:], sector)
	stream = append(stream, data...)
	c := &Chain{}
	for i := 0; i+1 < len(layout) && i < 2*16; i += 2 {
		v := binary.LittleEndian.Uint16(layout[i:])
		n := int(v & 0x1fff)
		b := make([]byte, n)
		if v&0x8000 != 0 {
			for j := range b {
				b[j] = 0xaa
			}
			c.Writable = append(c.Writable, b)
			continue
		}
		if len(c.Writable) > 0 {
			continue // a queue never yields readable after writable
		}
		stream = stream[copy(b, stream):]
		c.Readable = append(c.Readable, b)
	}
	return c
}

type blockSeed struct {
	ro     bool
	typ    uint32
	sector uint64
	layout []byte
	data   []byte
	status byte // what the device answers; refused for a malformed chain
}

const refused = 0xff

// blockSeeds are valid requests of every type, and a few malformed ones.
func blockSeeds() []blockSeed {
	lay := func(sizes ...int) []byte {
		var b []byte
		for _, n := range sizes {
			b = binary.LittleEndian.AppendUint16(b, uint16(n))
		}
		return b
	}
	const w = 0x8000 // device-writable
	seg := make([]byte, blkSegmentLen)
	binary.LittleEndian.PutUint64(seg, 2)
	binary.LittleEndian.PutUint32(seg[8:], 3)
	zeroUnmap := append([]byte(nil), seg...)
	zeroUnmap[12] = blkWriteZeroesUnmap
	return []blockSeed{
		{false, blkTIn, 1, lay(blkHeaderLen, w|SectorSize, w|1), nil, blkSOK},
		{false, blkTIn, 6, lay(blkHeaderLen, w|100, w|SectorSize+50), nil, blkSOK},
		{false, blkTOut, 2, lay(blkHeaderLen, SectorSize, w|1), bytes.Repeat([]byte("kiln"), SectorSize/4), blkSOK},
		{false, blkTOut, 7, lay(8, 8+SectorSize, w|1), bytes.Repeat([]byte{7}, SectorSize), blkSOK}, // header split
		{true, blkTOut, 0, lay(blkHeaderLen, SectorSize, w|1), make([]byte, SectorSize), blkSIOErr},
		{false, blkTFlush, 0, lay(blkHeaderLen, w|1), nil, blkSOK},
		{false, blkTGetID, 0, lay(blkHeaderLen, w|blkIDLen, w|1), nil, blkSOK},
		{false, blkTDiscard, 0, lay(blkHeaderLen+blkSegmentLen, w|1), seg, blkSOK},
		{false, blkTWriteZeroes, 0, lay(blkHeaderLen+blkSegmentLen, w|1), seg, blkSOK},
		{false, blkTWriteZeroes, 0, lay(blkHeaderLen+blkSegmentLen, w|1), zeroUnmap, blkSOK},
		{false, blkTIn, fuzzBlkSectors - 1, lay(blkHeaderLen, w|2*SectorSize, w|1), nil, blkSIOErr}, // past the end
		{false, 99, 0, lay(blkHeaderLen, w|1), nil, blkSUnsupp},
		{false, blkTIn, 0, lay(blkHeaderLen - 1), nil, refused}, // no header, no status
	}
}

// TestBlockRequestSeeds: FuzzBlockRequest's seeds reach the paths they
// are for.
func TestBlockRequestSeeds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	writeImage(t, path, fuzzBlkSectors*SectorSize)
	for i, s := range blockSeeds() {
		b, err := NewBlock(path, s.ro, "")
		if err != nil {
			t.Fatal(err)
		}
		c := blockChain(s.typ, s.sector, s.layout, s.data)
		_, err = b.handle(c)
		b.Close()
		if s.status == refused {
			if !errors.Is(err, ErrBadChain) {
				t.Errorf("seed %d: %v, want a malformed chain", i, err)
			}
			continue
		}
		last := c.Writable[len(c.Writable)-1]
		if err != nil || last[len(last)-1] != s.status {
			t.Errorf("seed %d: status %d, %v; want %d", i, last[len(last)-1], err, s.status)
		}
	}
}
