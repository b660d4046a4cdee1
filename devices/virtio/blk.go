package virtio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Block is a virtio block device (5.2) backed by a raw image file. Each
// request is a header (type, sector) in a readable buffer, data buffers,
// and a one-byte status the device writes last. Reads and writes go
// straight between the file and guest memory; a flush is fdatasync(2) of
// the image, so what the guest flushed survives a host crash.
type Block struct {
	file     *os.File
	readOnly bool
	id       [blkIDLen]byte
	sectors  uint64
	workers  Workers
}

// virtio-blk constants (5.2.3-5.2.6).
const (
	blkFSegMax      = 1 << 2
	blkFRO          = 1 << 5
	blkFBlkSize     = 1 << 6
	blkFFlush       = 1 << 9
	blkFDiscard     = 1 << 13
	blkFWriteZeroes = 1 << 14

	blkTIn          = 0
	blkTOut         = 1
	blkTFlush       = 4
	blkTGetID       = 8
	blkTDiscard     = 11
	blkTWriteZeroes = 13

	blkSOK     = 0
	blkSIOErr  = 1
	blkSUnsupp = 2

	blkHeaderLen  = 16
	blkSegmentLen = 16 // discard / write-zeroes range
	blkIDLen      = 20
	SectorSize    = 512
	blkQueueSize  = 256

	blkWriteZeroesUnmap = 1 // flags of a write-zeroes range

	// blkMaxZeroSegments is how many ranges a discard or write-zeroes
	// request may carry (the configuration space's max_discard_seg and
	// max_write_zeroes_seg). A request with more is unsupported, and is
	// refused before anything is copied out of guest memory: such a
	// request costs kiln at most blkMaxZeroSegments*blkSegmentLen bytes,
	// however large the chain the guest describes.
	blkMaxZeroSegments = 1
)

// ErrBadImage says a disk image cannot back a block device.
var ErrBadImage = errors.New("bad disk image")

// NewBlock opens the raw image at path. id is what the guest reads as the
// device's serial number (at most 20 bytes).
func NewBlock(path string, readOnly bool, id string) (*Block, error) {
	if st, err := os.Stat(path); err == nil && !readOnly && st.Mode().IsRegular() && st.Mode().Perm()&0o222 == 0 {
		// Root could open it read-write anyway; the file says it is not
		// meant to be written.
		return nil, fmt.Errorf("disk %s: %w: the file is read-only (mode %v); add ,ro for a read-only disk", path, ErrBadImage, st.Mode().Perm())
	}
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		if !readOnly && (errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS)) {
			return nil, fmt.Errorf("disk %s: %w: cannot open read-write (%v); add ,ro for a read-only disk", path, ErrBadImage, err)
		}
		return nil, fmt.Errorf("disk: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("disk: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("disk %s: %w: not a regular file", path, ErrBadImage)
	}
	if st.Size() == 0 || st.Size()%SectorSize != 0 {
		f.Close()
		return nil, fmt.Errorf("disk %s: %w: size %d is not a positive multiple of %d bytes", path, ErrBadImage, st.Size(), SectorSize)
	}
	b := &Block{file: f, readOnly: readOnly, sectors: uint64(st.Size()) / SectorSize}
	copy(b.id[:], id)
	return b, nil
}

// Close closes the image.
func (b *Block) Close() error { return b.file.Close() }

func (b *Block) Type() DeviceType        { return TypeBlock }
func (b *Block) QueueMaxSizes() []uint16 { return []uint16{blkQueueSize} }

// Features offers flush, sizes, and for a writable disk discard and
// write-zeroes; a read-only disk says so.
func (b *Block) Features() uint64 {
	f := uint64(CommonFeatures | blkFSegMax | blkFBlkSize | blkFFlush)
	if b.readOnly {
		f |= blkFRO
	} else {
		f |= blkFDiscard | blkFWriteZeroes
	}
	return f
}

// config is the device configuration space (struct virtio_blk_config).
func (b *Block) config() []byte {
	c := make([]byte, 60)
	le.PutUint64(c[0:], b.sectors)           // capacity in 512-byte sectors
	le.PutUint32(c[12:], blkQueueSize-2)     // seg_max: data buffers a request
	le.PutUint32(c[20:], SectorSize)         // blk_size
	le.PutUint32(c[36:], 1<<22)              // max_discard_sectors
	le.PutUint32(c[40:], blkMaxZeroSegments) // max_discard_seg
	le.PutUint32(c[44:], 1)                  // discard_sector_alignment
	le.PutUint32(c[48:], 1<<22)              // max_write_zeroes_sectors
	le.PutUint32(c[52:], blkMaxZeroSegments) // max_write_zeroes_seg
	c[56] = 1                                // write_zeroes_may_unmap
	return c
}

// ReadConfig reads the configuration space; past its end reads zeros.
func (b *Block) ReadConfig(off uint64, d []byte) {
	readConfig(b.config(), off, d)
}

// WriteConfig ignores writes: nothing in it is writable.
func (b *Block) WriteConfig(off uint64, d []byte) {}

// blockState is what a snapshot keeps of a disk: its shape, which the
// guest's driver knows, and which the image must still have.
type blockState struct {
	Sectors  uint64 `json:"sectors"`
	ReadOnly bool   `json:"read_only"`
}

// SaveState implements Snapshotter.
func (b *Block) SaveState() (json.RawMessage, error) {
	return json.Marshal(blockState{Sectors: b.sectors, ReadOnly: b.readOnly})
}

// RestoreState implements Snapshotter: the image must have the size and
// mode the guest saw. Its contents are the host's business: a restored
// guest whose disk changed underneath it sees the changes, as after a
// crash, so snapshots of VMs with writable disks are best restored on a
// copy of the image as it was.
func (b *Block) RestoreState(data json.RawMessage) error {
	var s blockState
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("block state: %w", err)
	}
	if s.Sectors != b.sectors || s.ReadOnly != b.readOnly {
		return fmt.Errorf("disk %s: %d sectors read-only=%v, the snapshot's had %d read-only=%v",
			b.file.Name(), b.sectors, b.readOnly, s.Sectors, s.ReadOnly)
	}
	return nil
}

// Activate starts serving the request queue.
func (b *Block) Activate(a *Activation) error {
	b.workers.Start(a, 0, b.handle)
	return nil
}

// Reset stops serving requests.
func (b *Block) Reset() { b.workers.Stop() }

// handle does one request and writes its status byte.
func (b *Block) handle(c *Chain) (uint32, error) {
	hdr, out := splitFront(c.Readable, blkHeaderLen)
	in, status := splitBack(c.Writable, 1)
	if hdr == nil || status == nil {
		return 0, fmt.Errorf("%w: block request without header or status", ErrBadChain)
	}
	typ, sector := le.Uint32(hdr), le.Uint64(hdr[8:])
	written := uint32(0)
	s := byte(blkSOK)
	switch typ {
	case blkTIn:
		n, err := b.transfer(sector, in, false)
		written = uint32(n)
		s = ioStatus(err)
	case blkTOut:
		if b.readOnly {
			s = blkSIOErr
			break
		}
		_, err := b.transfer(sector, out, true)
		s = ioStatus(err)
	case blkTFlush:
		if !b.readOnly {
			s = ioStatus(unix.Fdatasync(int(b.file.Fd())))
		}
	case blkTGetID:
		n := 0
		for _, buf := range in {
			n += copy(buf, b.id[n:])
		}
		written = uint32(n)
	case blkTDiscard, blkTWriteZeroes:
		if b.readOnly {
			s = blkSIOErr
			break
		}
		s = b.zeroRanges(out, typ == blkTDiscard)
	default:
		s = blkSUnsupp
	}
	status[0] = s
	return written + 1, nil
}

func ioStatus(err error) byte {
	if err != nil {
		return blkSIOErr
	}
	return blkSOK
}

// transfer moves the buffers' bytes from or to the image at sector,
// refusing any range that runs past the end of the disk.
func (b *Block) transfer(sector uint64, bufs [][]byte, write bool) (int, error) {
	size := b.sectors * SectorSize
	n := uint64(total(bufs))
	if sector > b.sectors || n > size-sector*SectorSize {
		return 0, fmt.Errorf("sector %d+%d bytes is past the end of the disk", sector, n)
	}
	off := int64(sector * SectorSize)
	done := 0
	for _, buf := range bufs {
		var k int
		var err error
		if write {
			k, err = b.file.WriteAt(buf, off)
		} else {
			k, err = b.file.ReadAt(buf, off)
			if err == io.EOF { // a sparse tail reads as zeros
				clear(buf[k:])
				k, err = len(buf), nil
			}
		}
		done += k
		off += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// zeroRanges discards or zeroes each range (struct
// virtio_blk_discard_write_zeroes) with fallocate(2).
func (b *Block) zeroRanges(bufs [][]byte, discard bool) byte {
	n := total(bufs)
	if n == 0 || n%blkSegmentLen != 0 || n > blkMaxZeroSegments*blkSegmentLen {
		return blkSUnsupp
	}
	data := flatten(bufs)
	for ; len(data) > 0; data = data[blkSegmentLen:] {
		sector, count, flags := le.Uint64(data), uint64(le.Uint32(data[8:])), le.Uint32(data[12:])
		if sector > b.sectors || count > b.sectors-sector {
			return blkSIOErr
		}
		mode := uint32(unix.FALLOC_FL_KEEP_SIZE | unix.FALLOC_FL_PUNCH_HOLE)
		if !discard && flags&blkWriteZeroesUnmap == 0 {
			mode = unix.FALLOC_FL_KEEP_SIZE | unix.FALLOC_FL_ZERO_RANGE
		}
		err := unix.Fallocate(int(b.file.Fd()), mode, int64(sector*SectorSize), int64(count*SectorSize))
		if err != nil && mode&unix.FALLOC_FL_ZERO_RANGE != 0 {
			// Not every file system zeroes ranges; punching a hole also
			// reads back as zeros.
			err = unix.Fallocate(int(b.file.Fd()), unix.FALLOC_FL_KEEP_SIZE|unix.FALLOC_FL_PUNCH_HOLE, int64(sector*SectorSize), int64(count*SectorSize))
		}
		if errors.Is(err, unix.EOPNOTSUPP) {
			return blkSUnsupp
		}
		if err != nil {
			return blkSIOErr
		}
	}
	return blkSOK
}
