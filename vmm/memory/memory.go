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
	"errors"
	"fmt"
	"unsafe"

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

// HostAddr is the host virtual address of the region, for KVM.
func (r Region) HostAddr() uintptr { return uintptr(unsafe.Pointer(&r.Host[0])) }

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
