// Package memory holds guest RAM: host memory mapped into the guest's
// physical address space.
//
// KVM does not allocate guest memory. The VMM mmaps ordinary anonymous
// memory and tells KVM, with KVM_SET_USER_MEMORY_REGION, at which
// guest-physical address each mapping appears. The guest then reads and
// writes it at full speed; the VMM sees the same bytes through its own
// mapping. Every access the VMM makes on the guest's behalf goes through
// Slice, ReadAt or WriteAt here, which check that the whole range lies inside
// one RAM region: a guest-supplied address can never reach host memory
// outside guest RAM.
package memory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/layout"
)

// ErrOutOfRange is returned for an access that is not wholly inside RAM.
var ErrOutOfRange = errors.New("guest address out of range")

// Region is one mapping of guest RAM.
type Region struct {
	layout.Region
	Host []byte // the host mapping; len(Host) == Size
}

// Guest is the guest's RAM.
type Guest struct {
	regions []Region
	size    uint64
}

// New maps size bytes of guest RAM, laid out by layout.RAMRegions. Pages are
// allocated by the host kernel on first touch (MAP_NORESERVE).
func New(size uint64) (*Guest, error) {
	g := &Guest{size: size}
	for _, r := range layout.RAMRegions(size) {
		b, err := unix.Mmap(-1, 0, int(r.Size), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("mmap %d MiB of guest memory: %w", r.Size>>20, err)
		}
		// Guest RAM is never part of a fork or a core dump.
		_ = unix.Madvise(b, unix.MADV_DONTFORK)
		_ = unix.Madvise(b, unix.MADV_DONTDUMP)
		g.regions = append(g.regions, Region{Region: r, Host: b})
	}
	return g, nil
}

// FromBytes wraps host buffers as guest RAM at the layout's addresses; for
// tests that need guest memory without mmap.
func FromBytes(b []byte) *Guest {
	return &Guest{regions: []Region{{Region: layout.Region{Addr: 0, Size: uint64(len(b))}, Host: b}}, size: uint64(len(b))}
}

// Close unmaps guest RAM.
func (g *Guest) Close() error {
	var first error
	for _, r := range g.regions {
		if err := unix.Munmap(r.Host); err != nil && first == nil {
			first = err
		}
	}
	g.regions = nil
	return first
}

// Size returns the total RAM size in bytes.
func (g *Guest) Size() uint64 { return g.size }

// Regions returns the RAM regions in address order.
func (g *Guest) Regions() []Region { return g.regions }

// Slice returns the host bytes backing [gpa, gpa+n). The range must lie
// inside one RAM region; otherwise ErrOutOfRange.
func (g *Guest) Slice(gpa, n uint64) ([]byte, error) {
	for _, r := range g.regions {
		if gpa >= r.Addr && gpa-r.Addr <= r.Size && n <= r.Size-(gpa-r.Addr) {
			off := gpa - r.Addr
			return r.Host[off : off+n : off+n], nil
		}
	}
	return nil, fmt.Errorf("%w: %#x+%#x", ErrOutOfRange, gpa, n)
}

// ReadAt copies guest memory at guest-physical address off into p.
func (g *Guest) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative address", ErrOutOfRange)
	}
	s, err := g.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(p, s), nil
}

// WriteAt copies p into guest memory at guest-physical address off.
func (g *Guest) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative address", ErrOutOfRange)
	}
	s, err := g.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(s, p), nil
}

// FromFile maps guest RAM of size bytes from a file that holds it, as
// WriteFile wrote it: each region at its offset in the file. The mapping
// is private (MAP_PRIVATE): pages are read from the file only when the
// guest first touches them, a page the guest writes becomes the VM's own
// copy, and the file never changes. Many VMs can map one file at once and
// share the host's page cache for every page none of them wrote.
func FromFile(path string, size uint64) (*Guest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("guest memory: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("guest memory: %w", err)
	}
	if uint64(st.Size()) != size {
		return nil, fmt.Errorf("guest memory %s: %d bytes, want %d", path, st.Size(), size)
	}
	g := &Guest{size: size}
	var off int64
	for _, r := range layout.RAMRegions(size) {
		b, err := unix.Mmap(int(f.Fd()), off, int(r.Size), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_NORESERVE)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("mmap %d MiB of guest memory from %s: %w", r.Size>>20, path, err)
		}
		_ = unix.Madvise(b, unix.MADV_DONTFORK)
		_ = unix.Madvise(b, unix.MADV_DONTDUMP)
		g.regions = append(g.regions, Region{Region: r, Host: b})
		off += int64(r.Size)
	}
	return g, nil
}

// WriteFile writes guest RAM to path, region after region, for FromFile.
// Pages that hold only zeros are left as holes: a guest that touched a
// few MiB of its RAM makes a file of a few MiB on disk, whatever its
// size. It returns the bytes of RAM written (not holes).
func (g *Guest) WriteFile(path string) (written uint64, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("write guest memory: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write guest memory: %w", cerr)
		}
	}()
	var off int64
	for _, r := range g.regions {
		n, err := writeNonZero(f, r.Host, off)
		written += n
		if err != nil {
			return written, fmt.Errorf("write guest memory to %s: %w", path, err)
		}
		off += int64(r.Size)
	}
	if err := f.Truncate(off); err != nil {
		return written, fmt.Errorf("write guest memory to %s: %w", path, err)
	}
	return written, nil
}

// Checksum is the CRC-32 (in table's polynomial) of guest RAM, region
// after region: of the file WriteFile writes.
func (g *Guest) Checksum(table *crc32.Table) uint32 {
	var sum uint32
	for _, r := range g.regions {
		sum = crc32.Update(sum, table, r.Host)
	}
	return sum
}

// pageSize is the unit in which WriteFile looks for zeros.
const pageSize = 4096

// writeNonZero writes the runs of non-zero pages of b to f at off.
func writeNonZero(f *os.File, b []byte, off int64) (uint64, error) {
	var written uint64
	start := -1 // the first page of the current run of non-zero pages
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		_, err := f.WriteAt(b[start:end], off+int64(start))
		written += uint64(end - start)
		start = -1
		return err
	}
	for p := 0; p < len(b); p += pageSize {
		end := min(p+pageSize, len(b))
		if isZero(b[p:end]) {
			if err := flush(p); err != nil {
				return written, err
			}
		} else if start < 0 {
			start = p
		}
	}
	return written, flush(len(b))
}

// isZero reports whether b holds only zero bytes, eight at a time.
func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
