package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"

	"github.com/kiln-vmm/kiln/vmm/memory"
)

// fakeBzImage lays out a minimal valid bzImage: 4 setup sectors plus the
// boot sector, then payload bytes of "protected-mode kernel".
func fakeBzImage(payload int) []byte {
	b := make([]byte, 5*512+payload)
	b[hdrSetupSects] = 4
	binary.LittleEndian.PutUint16(b[hdrBootFlag:], bootFlagMagic)
	b[hdrJump+1] = byte(hdrEnd - 0x202)
	binary.LittleEndian.PutUint32(b[hdrMagic:], hdrSMagic)
	binary.LittleEndian.PutUint16(b[hdrVersion:], 0x020f)
	b[hdrLoadFlags] = loadedHigh
	binary.LittleEndian.PutUint16(b[hdrXLoadFlags:], xlfKernel64)
	binary.LittleEndian.PutUint32(b[hdrInitrdAddrMax:], 0x7fffffff)
	binary.LittleEndian.PutUint32(b[hdrCmdlineSize:], 2047)
	binary.LittleEndian.PutUint32(b[hdrInitSize:], uint32(payload))
	for i := 5 * 512; i < len(b); i++ {
		b[i] = 0xcc
	}
	return b
}

// fakeVmlinux builds an ELF64 executable with one PT_LOAD segment of code
// at paddr (memsz larger than filesz: a bss) and a PT_NOTE holding a Xen
// PHYS32_ENTRY note, if entry is non-zero.
func fakeVmlinux(paddr uint64, code []byte, bss uint64, entry uint32) []byte {
	var note bytes.Buffer
	w := func(v any) { binary.Write(&note, binary.LittleEndian, v) }
	if entry != 0 {
		// A note that is not ours first, to check the walk.
		w(uint32(4))
		w(uint32(4))
		w(uint32(1))
		note.WriteString("GNU\x00")
		w(uint32(0))
		w(uint32(4))
		w(uint32(8))
		w(uint32(xenElfnotePhys32Entry))
		note.WriteString("Xen\x00")
		w(uint64(entry))
	}
	const ehsize, phsize = 64, 56
	phnum := 2
	dataOff := uint64(ehsize + phsize*phnum)
	var out bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: 1,
		Entry: paddr, Phoff: ehsize, Ehsize: ehsize, Phentsize: phsize, Phnum: uint16(phnum),
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&out, binary.LittleEndian, hdr)
	binary.Write(&out, binary.LittleEndian, elf.Prog64{
		Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Off: dataOff,
		Vaddr: 0xffffffff80000000 + paddr, Paddr: paddr,
		Filesz: uint64(len(code)), Memsz: uint64(len(code)) + bss, Align: 0x1000,
	})
	binary.Write(&out, binary.LittleEndian, elf.Prog64{
		Type: uint32(elf.PT_NOTE), Off: dataOff + uint64(len(code)),
		Filesz: uint64(note.Len()), Memsz: uint64(note.Len()), Align: 4,
	})
	out.Write(code)
	out.Write(note.Bytes())
	return out.Bytes()
}

func newMem(size int) *memory.Guest { return memory.FromBytes(make([]byte, size)) }
