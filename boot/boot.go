package boot

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/layout"
)

// Memory is guest RAM as the loader sees it.
type Memory interface {
	io.WriterAt
	Size() uint64
}

// Protocol says how the vCPU must enter the kernel.
type Protocol int

const (
	// ProtocolPVH: 32-bit protected mode, paging off, EBX = start info.
	ProtocolPVH Protocol = iota
	// ProtocolLinux64: 64-bit long mode, identity paging, RSI = zero page.
	ProtocolLinux64
)

func (p Protocol) String() string {
	if p == ProtocolPVH {
		return "PVH"
	}
	return "Linux 64-bit boot protocol"
}

// Entry is where and how the boot vCPU starts.
type Entry struct {
	Protocol Protocol
	RIP      uint64 // the kernel's entry point
	Params   uint64 // start info (PVH, in EBX) or zero page (Linux, in RSI)
}

// ErrNotKernel says a file is neither a bzImage nor a PVH ELF kernel.
var ErrNotKernel = errors.New("not a Linux kernel")

// ErrTooBig says the kernel or initrd does not fit in guest memory.
var ErrTooBig = errors.New("does not fit in guest memory")

// Spec is what to load.
type Spec struct {
	Kernel  string // path to a bzImage or ELF vmlinux with a PVH note
	Initrd  string // path to an initramfs, or ""
	Cmdline string
}

// Load reads the kernel and initrd named in s and writes them, the command
// line and the boot-protocol structures into mem.
//
// The files are mapped, not read: their pages are copied straight from the
// page cache into guest memory and unmapped afterwards, so a 17 MiB vmlinux
// does not stay behind in the VMM's heap (and in its resident memory, the
// overhead kiln bench measures).
func Load(mem Memory, s Spec) (Entry, error) {
	kernel, unmapKernel, err := mapFile(s.Kernel)
	if err != nil {
		return Entry{}, fmt.Errorf("read kernel: %w", err)
	}
	defer unmapKernel()
	var initrd []byte
	if s.Initrd != "" {
		var unmapInitrd func()
		if initrd, unmapInitrd, err = mapFile(s.Initrd); err != nil {
			return Entry{}, fmt.Errorf("read initrd: %w", err)
		}
		defer unmapInitrd()
	}
	if err := writeCmdline(mem, s.Cmdline); err != nil {
		return Entry{}, err
	}
	if IsELF(kernel) {
		return LoadPVH(mem, kernel, initrd)
	}
	if IsBzImage(kernel) {
		return LoadBzImage(mem, kernel, initrd, len(s.Cmdline))
	}
	return Entry{}, fmt.Errorf("load kernel %s: %w (no bzImage header, no ELF magic)", s.Kernel, ErrNotKernel)
}

// placeInitrd chooses the initrd's address: page-aligned, as high as
// possible below limit, and above kernelEnd.
func placeInitrd(memSize uint64, size int, kernelEnd, limit uint64) (uint64, error) {
	top := lowRAMEnd(memSize)
	if limit != 0 && top > limit+1 {
		top = limit + 1
	}
	n := uint64(size)
	if n > top || (top-n)&^0xfff < kernelEnd {
		return 0, fmt.Errorf("initrd of %d MiB %w of %d MiB with the kernel (ends at %d MiB)",
			(n+(1<<20)-1)>>20, ErrTooBig, memSize>>20, (kernelEnd+(1<<20)-1)>>20)
	}
	return (top - n) &^ 0xfff, nil
}

// checkRange reports whether [addr, addr+n) lies in high RAM below the gap.
func checkRange(memSize, addr, n uint64, what string) error {
	end := lowRAMEnd(memSize)
	if addr < layout.HighMemory || addr > end || n > end-addr {
		return fmt.Errorf("%s at %#x+%#x: %w of %d MiB", what, addr, n, ErrTooBig, memSize>>20)
	}
	return nil
}

// mapFile maps a file read-only and returns its bytes and the function
// that unmaps them. An empty file gives no bytes.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	size := fi.Size()
	if size == 0 {
		return nil, func() {}, nil
	}
	if size > maxFileSize {
		return nil, nil, fmt.Errorf("%s: %d MiB %w", path, size>>20, ErrTooBig)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	return b, func() { _ = unix.Munmap(b) }, nil
}

// maxFileSize bounds a kernel or initrd: no guest kiln can make holds more.
const maxFileSize = 1 << 40
