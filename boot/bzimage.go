package boot

import (
	"encoding/binary"
	"fmt"

	"github.com/kiln-vmm/kiln/vmm/layout"
)

// Offsets of setup header fields inside a bzImage file, which are also their
// offsets inside struct boot_params (Documentation/x86/boot.rst, "The Real-
// Mode Kernel Header").
const (
	hdrSetupSects    = 0x1f1 // u8: size of the setup code in 512-byte sectors, less one
	hdrBootFlag      = 0x1fe // u16: 0xAA55
	hdrJump          = 0x200 // u16: a jump; its second byte gives the header length
	hdrMagic         = 0x202 // u32: "HdrS"
	hdrVersion       = 0x206 // u16: boot protocol version
	hdrTypeOfLoader  = 0x210 // u8
	hdrLoadFlags     = 0x211 // u8
	hdrRamdiskImage  = 0x218 // u32
	hdrRamdiskSize   = 0x21c // u32
	hdrHeapEndPtr    = 0x224 // u16
	hdrCmdLinePtr    = 0x228 // u32
	hdrInitrdAddrMax = 0x22c // u32
	hdrXLoadFlags    = 0x236 // u16
	hdrCmdlineSize   = 0x238 // u32
	hdrInitSize      = 0x260 // u32: memory the kernel needs from its load address
	hdrEnd           = 0x268 // end of the fields kiln reads

	bootFlagMagic = 0xAA55
	hdrSMagic     = 0x53726448 // "HdrS"

	loadedHigh   = 1 << 0 // loadflags: protected-mode code at 1 MiB
	canUseHeap   = 1 << 7 // loadflags: heap_end_ptr is valid
	xlfKernel64  = 1 << 0 // xloadflags: has the 64-bit entry at +0x200
	loaderUndef  = 0xff   // type_of_loader: a loader with no assigned ID
	entry64Delta = 0x200

	// boot_params fields outside the setup header.
	bpE820Entries = 0x1e8 // u8
	bpE820Table   = 0x2d0 // struct boot_e820_entry[128]
	bpE820Max     = 128
)

var le = binary.LittleEndian

// IsBzImage reports whether b starts like a bzImage (boot flag and HdrS).
func IsBzImage(b []byte) bool {
	return len(b) >= hdrEnd && le.Uint16(b[hdrBootFlag:]) == bootFlagMagic &&
		le.Uint32(b[hdrMagic:]) == hdrSMagic
}

// SetupHeader is the part of a bzImage's setup header that a 64-bit loader
// needs, checked.
type SetupHeader struct {
	Version       uint16 // boot protocol version, e.g. 0x020f
	SetupSize     int    // bytes of real-mode setup code before the kernel
	InitrdAddrMax uint32 // highest address the initrd may end at
	CmdlineSize   uint32 // longest command line the kernel accepts
	InitSize      uint32 // memory the kernel needs at its load address
	raw           []byte // the header bytes to copy into the zero page
}

// ParseBzImage validates a bzImage's setup header. It returns an error
// wrapping ErrNotKernel for anything that is not a loadable 64-bit bzImage.
func ParseBzImage(b []byte) (*SetupHeader, error) {
	if !IsBzImage(b) {
		return nil, fmt.Errorf("%w: no bzImage setup header", ErrNotKernel)
	}
	h := &SetupHeader{Version: le.Uint16(b[hdrVersion:])}
	if h.Version < 0x020c {
		return nil, fmt.Errorf("%w: boot protocol %d.%02d is too old, need 2.12 for a 64-bit entry",
			ErrNotKernel, h.Version>>8, h.Version&0xff)
	}
	if le.Uint16(b[hdrXLoadFlags:])&xlfKernel64 == 0 {
		return nil, fmt.Errorf("%w: bzImage has no 64-bit entry point", ErrNotKernel)
	}
	if b[hdrLoadFlags]&loadedHigh == 0 {
		return nil, fmt.Errorf("%w: not a bzImage (zImage loads low)", ErrNotKernel)
	}
	sects := int(b[hdrSetupSects])
	if sects == 0 {
		sects = 4
	}
	h.SetupSize = (sects + 1) * 512
	if h.SetupSize >= len(b) {
		return nil, fmt.Errorf("%w: truncated bzImage (%d bytes, setup code alone is %d)", ErrNotKernel, len(b), h.SetupSize)
	}
	hdrLen := 0x202 + int(b[hdrJump+1]) // the jump skips over the header
	if hdrLen < hdrEnd || hdrLen > h.SetupSize {
		return nil, fmt.Errorf("%w: bad setup header length %d", ErrNotKernel, hdrLen)
	}
	h.raw = b[hdrSetupSects:hdrLen]
	h.InitrdAddrMax = le.Uint32(b[hdrInitrdAddrMax:])
	h.CmdlineSize = le.Uint32(b[hdrCmdlineSize:])
	h.InitSize = le.Uint32(b[hdrInitSize:])
	return h, nil
}

// LoadBzImage loads a bzImage for a 64-bit entry: the protected-mode kernel
// at 1 MiB, the initrd high in RAM, and a zero page describing both.
func LoadBzImage(mem Memory, b, initrd []byte, cmdlineLen int) (Entry, error) {
	h, err := ParseBzImage(b)
	if err != nil {
		return Entry{}, err
	}
	if h.CmdlineSize != 0 && uint32(cmdlineLen) > h.CmdlineSize {
		return Entry{}, fmt.Errorf("kernel command line is %d bytes; this kernel takes at most %d", cmdlineLen, h.CmdlineSize)
	}
	kernel := b[h.SetupSize:]
	size := uint64(len(kernel))
	if uint64(h.InitSize) > size {
		size = uint64(h.InitSize)
	}
	if err := checkRange(mem.Size(), layout.BzImageLoadAddr, size, "kernel"); err != nil {
		return Entry{}, err
	}
	if _, err := mem.WriteAt(kernel, layout.BzImageLoadAddr); err != nil {
		return Entry{}, fmt.Errorf("load bzImage: %w", err)
	}

	zp := make([]byte, 4096)
	copy(zp[hdrSetupSects:], h.raw)
	zp[hdrTypeOfLoader] = loaderUndef
	zp[hdrLoadFlags] |= canUseHeap
	le.PutUint16(zp[hdrHeapEndPtr:], 0xfe00)
	le.PutUint32(zp[hdrCmdLinePtr:], layout.CmdlineAddr)
	if len(initrd) > 0 {
		addr, err := placeInitrd(mem.Size(), len(initrd), layout.BzImageLoadAddr+size, uint64(h.InitrdAddrMax))
		if err != nil {
			return Entry{}, err
		}
		if _, err := mem.WriteAt(initrd, int64(addr)); err != nil {
			return Entry{}, fmt.Errorf("load initrd: %w", err)
		}
		le.PutUint32(zp[hdrRamdiskImage:], uint32(addr))
		le.PutUint32(zp[hdrRamdiskSize:], uint32(len(initrd)))
	}
	if err := putE820(zp, MemoryMap(mem.Size())); err != nil {
		return Entry{}, err
	}
	if _, err := mem.WriteAt(zp, layout.ZeroPage); err != nil {
		return Entry{}, fmt.Errorf("write zero page: %w", err)
	}
	return Entry{Protocol: ProtocolLinux64, RIP: layout.BzImageLoadAddr + entry64Delta, Params: layout.ZeroPage}, nil
}

// putE820 writes the memory map into a zero page.
func putE820(zp []byte, m []E820Entry) error {
	if len(m) > bpE820Max {
		return fmt.Errorf("memory map has %d entries, the zero page holds %d", len(m), bpE820Max)
	}
	zp[bpE820Entries] = byte(len(m))
	for i, e := range m {
		o := bpE820Table + 20*i
		le.PutUint64(zp[o:], e.Addr)
		le.PutUint64(zp[o+8:], e.Size)
		le.PutUint32(zp[o+16:], uint32(e.Type))
	}
	return nil
}
