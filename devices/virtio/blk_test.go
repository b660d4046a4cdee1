package virtio

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func image(t *testing.T, size int) string {
	p := filepath.Join(t.TempDir(), "disk.img")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i / SectorSize)
	}
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}

func header(typ uint32, sector uint64) []byte {
	h := make([]byte, blkHeaderLen)
	binary.LittleEndian.PutUint32(h, typ)
	binary.LittleEndian.PutUint64(h[8:], sector)
	return h
}

func blkDriver(t *testing.T, path string, ro bool) (*fakeDriver, *Block) {
	b, err := NewBlock(path, ro, "kiln-test-disk")
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	d := newDriver(t, b)
	d.setup(16, 0)
	return d, b
}

func TestBlockConfig(t *testing.T) {
	_, b := blkDriver(t, image(t, 8*SectorSize), false)
	c := make([]byte, 8)
	b.ReadConfig(0, c)
	require.EqualValues(t, 8, binary.LittleEndian.Uint64(c))
	require.Zero(t, b.Features()&blkFRO)
	b.ReadConfig(1000, c) // past the end: zeros, no panic
}

func TestBlockReadWriteFlush(t *testing.T) {
	p := image(t, 16*SectorSize)
	d, _ := blkDriver(t, p, false)

	a := d.submit(buf{data: header(blkTIn, 2)}, buf{n: SectorSize, write: true}, buf{n: 1, write: true})
	_, n := d.wait()
	require.EqualValues(t, SectorSize+1, n)
	require.Equal(t, bytes.Repeat([]byte{2}, SectorSize), d.raw[a[1]:a[1]+SectorSize])
	require.EqualValues(t, blkSOK, d.raw[a[2]])

	payload := bytes.Repeat([]byte("kiln"), SectorSize/2) // two sectors
	a = d.submit(buf{data: header(blkTOut, 5)}, buf{data: payload}, buf{n: 1, write: true})
	d.wait()
	require.EqualValues(t, blkSOK, d.raw[a[2]])
	a = d.submit(buf{data: header(blkTFlush, 0)}, buf{n: 1, write: true})
	d.wait()
	require.EqualValues(t, blkSOK, d.raw[a[1]])
	onDisk, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, payload, onDisk[5*SectorSize:7*SectorSize])
}

func TestBlockErrors(t *testing.T) {
	d, _ := blkDriver(t, image(t, 4*SectorSize), false)
	// Past the end of the disk.
	a := d.submit(buf{data: header(blkTIn, 3)}, buf{n: 2 * SectorSize, write: true}, buf{n: 1, write: true})
	d.wait()
	require.EqualValues(t, blkSIOErr, d.raw[a[2]])
	a = d.submit(buf{data: header(blkTIn, 1<<62)}, buf{n: SectorSize, write: true}, buf{n: 1, write: true})
	d.wait()
	require.EqualValues(t, blkSIOErr, d.raw[a[2]])
	// Unknown request type.
	a = d.submit(buf{data: header(99, 0)}, buf{n: 1, write: true})
	d.wait()
	require.EqualValues(t, blkSUnsupp, d.raw[a[1]])
	// Get ID.
	a = d.submit(buf{data: header(blkTGetID, 0)}, buf{n: blkIDLen, write: true}, buf{n: 1, write: true})
	d.wait()
	require.Equal(t, "kiln-test-disk", string(bytes.TrimRight(d.raw[a[1]:a[1]+blkIDLen], "\x00")))
	// No status byte: a malformed request.
	d.submit(buf{data: header(blkTIn, 0)})
	d.waitNeedsReset()
}

func TestBlockReadOnly(t *testing.T) {
	p := image(t, 4*SectorSize)
	d, b := blkDriver(t, p, true)
	require.NotZero(t, b.Features()&blkFRO)
	a := d.submit(buf{data: header(blkTOut, 0)}, buf{data: make([]byte, SectorSize)}, buf{n: 1, write: true})
	d.wait()
	require.EqualValues(t, blkSIOErr, d.raw[a[2]])
	onDisk, _ := os.ReadFile(p)
	require.Equal(t, byte(0), onDisk[0])
	require.Equal(t, byte(1), onDisk[SectorSize], "image unchanged")
}

func TestBlockDiscardAndWriteZeroes(t *testing.T) {
	p := image(t, 64*SectorSize)
	d, _ := blkDriver(t, p, false)
	seg := make([]byte, blkSegmentLen)
	binary.LittleEndian.PutUint64(seg, 8)
	binary.LittleEndian.PutUint32(seg[8:], 8)
	a := d.submit(buf{data: header(blkTWriteZeroes, 0)}, buf{data: seg}, buf{n: 1, write: true})
	d.wait()
	require.EqualValues(t, blkSOK, d.raw[a[2]])
	onDisk, _ := os.ReadFile(p)
	require.Equal(t, make([]byte, 8*SectorSize), onDisk[8*SectorSize:16*SectorSize])
	require.Equal(t, byte(16), onDisk[16*SectorSize], "after the range untouched")
}

func TestNewBlockErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := NewBlock(filepath.Join(dir, "missing.img"), false, "")
	require.ErrorIs(t, err, os.ErrNotExist)
	odd := filepath.Join(dir, "odd.img")
	require.NoError(t, os.WriteFile(odd, make([]byte, 1000), 0o644))
	_, err = NewBlock(odd, false, "")
	require.ErrorIs(t, err, ErrBadImage)
	require.ErrorContains(t, err, "multiple of 512")
	_, err = NewBlock(dir, false, "")
	require.Error(t, err)
	ro := image(t, SectorSize)
	require.NoError(t, os.Chmod(ro, 0o444))
	_, err = NewBlock(ro, false, "")
	require.ErrorContains(t, err, ",ro")
	b, err := NewBlock(ro, true, "")
	require.NoError(t, err)
	b.Close()
}
