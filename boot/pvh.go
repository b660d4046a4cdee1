package boot

import (
	"bytes"
	"debug/elf"
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
func IsELF(b []byte) bool { return bytes.HasPrefix(b, []byte(elf.ELFMAG)) }

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
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: bad ELF file: %v", ErrNotKernel, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("%w: ELF is %v %v %v, want ELFCLASS64 EM_X86_64 ET_EXEC", ErrNotKernel, f.Class, f.Machine, f.Type)
	}
	k := &PVHKernel{}
	found := false
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_NOTE:
			data, err := progData(b, p)
			if err != nil {
				return nil, err
			}
			if e, ok := findPVHNote(data); ok {
				k.Entry, found = e, true
			}
		case elf.PT_LOAD:
			data, err := progData(b, p)
			if err != nil {
				return nil, err
			}
			if p.Memsz < p.Filesz || p.Paddr+p.Memsz < p.Paddr {
				return nil, fmt.Errorf("%w: bad PT_LOAD segment at %#x", ErrNotKernel, p.Paddr)
			}
			k.Segments = append(k.Segments, Segment{Addr: p.Paddr, Data: data, MemSize: p.Memsz})
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

// progData returns a segment's file bytes, refusing ranges past the file.
func progData(b []byte, p *elf.Prog) ([]byte, error) {
	if p.Off > uint64(len(b)) || p.Filesz > uint64(len(b))-p.Off {
		return nil, fmt.Errorf("%w: truncated ELF (segment at offset %#x+%#x, file is %d bytes)", ErrNotKernel, p.Off, p.Filesz, len(b))
	}
	return b[p.Off : p.Off+p.Filesz], nil
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
