package boot

import (
	"bytes"
	"fmt"

	"github.com/kiln-vmm/kiln/vmm/layout"
)

// PVH constants from xen/include/public/{elfnote.h,arch-x86/hvm/start_info.h}.
const (
	xenElfnotePhys32Entry = 18         // XEN_ELFNOTE_PHYS32_ENTRY
	hvmStartMagic         = 0x336ec578 // XEN_HVM_START_MAGIC_VALUE
	hvmStartVersion       = 1          // start info with a memory map
	startInfoSize         = 56
	modlistEntrySize      = 32
	memmapEntrySize       = 24
)

// IsELF reports whether b starts with the ELF magic.
func IsELF(b []byte) bool { return bytes.HasPrefix(b, []byte("\x7fELF")) }

// PVHKernel is an ELF vmlinux checked for PVH boot.
type PVHKernel struct {
	Entry    uint32 // 32-bit physical entry point from the PVH note
	Segments []Segment
}

// Segment is one PT_LOAD segment: Data goes at Addr, zeros up to MemSize.
type Segment struct {
	Addr    uint64
	Data    []byte
	MemSize uint64
}

// End is the first physical address past the segment.
func (s Segment) End() uint64 { return s.Addr + s.MemSize }

// ParsePVH parses an ELF vmlinux, finds its PVH entry note and its loadable
// segments. Errors wrap ErrNotKernel.
func ParsePVH(b []byte) (*PVHKernel, error) {
	hdr, err := parseELFHeader(b)
	if err != nil {
		return nil, err
	}
	k := &PVHKernel{}
	found := false
	for i := 0; i < int(hdr.phnum); i++ {
		p, err := hdr.prog(b, i)
		if err != nil {
			return nil, err
		}
		switch p.typ {
		case ptNote:
			data, err := progData(b, p)
			if err != nil {
				return nil, err
			}
			if e, ok := findPVHNote(data); ok {
				k.Entry, found = e, true
			}
		case ptLoad:
			data, err := progData(b, p)
			if err != nil {
				return nil, err
			}
			if p.memsz < p.filesz || p.paddr+p.memsz < p.paddr {
				return nil, fmt.Errorf("%w: bad PT_LOAD segment at %#x", ErrNotKernel, p.paddr)
			}
			k.Segments = append(k.Segments, Segment{Addr: p.paddr, Data: data, MemSize: p.memsz})
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY; build with CONFIG_PVH=y)", ErrNotKernel)
	}
	if len(k.Segments) == 0 {
		return nil, fmt.Errorf("%w: ELF kernel has no loadable segments", ErrNotKernel)
	}
	return k, nil
}

// An ELF file starts with a header that says where its program headers
// are; each program header describes a segment: PT_LOAD ones are copied
// to memory at their physical address (p_paddr), PT_NOTE ones hold notes
// such as the PVH entry point. Only these fields are read, so the loader
// needs nothing of debug/elf (which would also link its decompressors
// into the VMM).
const (
	elfHeaderSize  = 64
	elfProgSize    = 56
	elfClass64     = 2
	elfDataLSB     = 1
	elfTypeExec    = 2
	elfMachineX86  = 62
	ptLoad         = 1
	ptNote         = 4
	maxProgHeaders = 256
)

// elfHeader is the part of the ELF64 header the loader uses.
type elfHeader struct {
	phoff     uint64
	phentsize uint16
	phnum     uint16
}

// elfProg is one ELF64 program header.
type elfProg struct {
	typ           uint32
	off, paddr    uint64
	filesz, memsz uint64
}

// parseELFHeader checks that b is a little-endian x86-64 executable and
// returns where its program headers are.
func parseELFHeader(b []byte) (elfHeader, error) {
	if len(b) < elfHeaderSize || !IsELF(b) {
		return elfHeader{}, fmt.Errorf("%w: bad ELF file: header truncated", ErrNotKernel)
	}
	class, data := b[4], b[5]
	typ, machine := le.Uint16(b[16:]), le.Uint16(b[18:])
	if class != elfClass64 || data != elfDataLSB || typ != elfTypeExec || machine != elfMachineX86 {
		return elfHeader{}, fmt.Errorf("%w: ELF is class %d, data %d, type %d, machine %d; want a 64-bit little-endian x86-64 executable (ELFCLASS64 EM_X86_64 ET_EXEC)",
			ErrNotKernel, class, data, typ, machine)
	}
	h := elfHeader{phoff: le.Uint64(b[32:]), phentsize: le.Uint16(b[54:]), phnum: le.Uint16(b[56:])}
	if h.phnum > maxProgHeaders || (h.phnum > 0 && h.phentsize < elfProgSize) {
		return elfHeader{}, fmt.Errorf("%w: bad ELF file: %d program headers of %d bytes", ErrNotKernel, h.phnum, h.phentsize)
	}
	return h, nil
}

// prog reads program header i, refusing one past the end of the file.
func (h elfHeader) prog(b []byte, i int) (elfProg, error) {
	off := h.phoff + uint64(i)*uint64(h.phentsize)
	if h.phoff > uint64(len(b)) || off < h.phoff || off > uint64(len(b))-elfProgSize {
		return elfProg{}, fmt.Errorf("%w: bad ELF file: program header %d past the end of the file", ErrNotKernel, i)
	}
	p := b[off : off+elfProgSize]
	return elfProg{typ: le.Uint32(p), off: le.Uint64(p[8:]), paddr: le.Uint64(p[24:]),
		filesz: le.Uint64(p[32:]), memsz: le.Uint64(p[40:])}, nil
}

// progData returns a segment's file bytes, refusing ranges past the file.
func progData(b []byte, p elfProg) ([]byte, error) {
	if p.off > uint64(len(b)) || p.filesz > uint64(len(b))-p.off {
		return nil, fmt.Errorf("%w: truncated ELF (segment at offset %#x+%#x, file is %d bytes)", ErrNotKernel, p.off, p.filesz, len(b))
	}
	return b[p.off : p.off+p.filesz], nil
}

// findPVHNote walks ELF notes (namesz, descsz, type, name, desc; each part
// padded to 4 bytes) for the Xen PHYS32_ENTRY note.
func findPVHNote(b []byte) (uint32, bool) {
	for len(b) >= 12 {
		namesz, descsz, typ := le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:])
		b = b[12:]
		nameLen, descLen := align4(uint64(namesz)), align4(uint64(descsz))
		if nameLen > uint64(len(b)) || descLen > uint64(len(b))-nameLen {
			return 0, false
		}
		name, desc := b[:namesz], b[nameLen:nameLen+uint64(descsz)]
		b = b[nameLen+descLen:]
		if typ == xenElfnotePhys32Entry && string(bytes.TrimRight(name, "\x00")) == "Xen" && len(desc) >= 4 {
			return le.Uint32(desc), true
		}
	}
	return 0, false
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// LoadPVH loads an ELF vmlinux for PVH entry: its segments at their
// physical addresses, the initrd as module 0, and struct hvm_start_info
// with the memory map and the command line.
func LoadPVH(mem Memory, b, initrd []byte) (Entry, error) {
	k, err := ParsePVH(b)
	if err != nil {
		return Entry{}, err
	}
	var kernelEnd uint64
	for _, s := range k.Segments {
		if err := checkRange(mem.Size(), s.Addr, s.MemSize, "kernel segment"); err != nil {
			return Entry{}, err
		}
		if _, err := mem.WriteAt(s.Data, int64(s.Addr)); err != nil {
			return Entry{}, fmt.Errorf("load kernel segment at %#x: %w", s.Addr, err)
		}
		if _, err := mem.WriteAt(make([]byte, s.MemSize-uint64(len(s.Data))), int64(s.Addr)+int64(len(s.Data))); err != nil {
			return Entry{}, fmt.Errorf("clear kernel bss at %#x: %w", s.Addr, err)
		}
		kernelEnd = max(kernelEnd, s.End())
	}

	si := make([]byte, startInfoSize)
	le.PutUint32(si[0:], hvmStartMagic)
	le.PutUint32(si[4:], hvmStartVersion)
	le.PutUint64(si[24:], layout.CmdlineAddr)
	if len(initrd) > 0 {
		addr, err := placeInitrd(mem.Size(), len(initrd), kernelEnd, 0)
		if err != nil {
			return Entry{}, err
		}
		if _, err := mem.WriteAt(initrd, int64(addr)); err != nil {
			return Entry{}, fmt.Errorf("load initrd: %w", err)
		}
		mod := make([]byte, modlistEntrySize)
		le.PutUint64(mod[0:], addr)
		le.PutUint64(mod[8:], uint64(len(initrd)))
		if _, err := mem.WriteAt(mod, layout.PVHModList); err != nil {
			return Entry{}, err
		}
		le.PutUint32(si[12:], 1)
		le.PutUint64(si[16:], layout.PVHModList)
	}
	mm := MemoryMap(mem.Size())
	if len(mm) > layout.PVHMemMapMax {
		return Entry{}, fmt.Errorf("memory map has %d entries, room for %d", len(mm), layout.PVHMemMapMax)
	}
	table := make([]byte, memmapEntrySize*len(mm))
	for i, e := range mm {
		o := memmapEntrySize * i
		le.PutUint64(table[o:], e.Addr)
		le.PutUint64(table[o+8:], e.Size)
		le.PutUint32(table[o+16:], uint32(e.Type))
	}
	if _, err := mem.WriteAt(table, layout.PVHMemMap); err != nil {
		return Entry{}, err
	}
	le.PutUint64(si[40:], layout.PVHMemMap)
	le.PutUint32(si[48:], uint32(len(mm)))
	if _, err := mem.WriteAt(si, layout.PVHStartInfo); err != nil {
		return Entry{}, fmt.Errorf("write PVH start info: %w", err)
	}
	return Entry{Protocol: ProtocolPVH, RIP: uint64(k.Entry), Params: layout.PVHStartInfo}, nil
}
