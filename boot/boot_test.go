package boot

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/layout"
)

var u32 = binary.LittleEndian.Uint32
var u64 = binary.LittleEndian.Uint64

func TestMemoryMap(t *testing.T) {
	m := MemoryMap(256 << 20)
	require.Equal(t, []E820Entry{
		{0, layout.MPTableAddr, E820RAM},
		{layout.MPTableAddr, layout.HighMemory - layout.MPTableAddr, E820Reserved},
		{layout.HighMemory, 256<<20 - layout.HighMemory, E820RAM},
	}, m)

	// Above the MMIO gap RAM continues at 4 GiB.
	m = MemoryMap(4 << 30)
	require.Len(t, m, 4)
	require.Equal(t, E820Entry{layout.HighMemory, layout.MMIOStart - layout.HighMemory, E820RAM}, m[2])
	require.Equal(t, E820Entry{layout.HighRAMStart, 4<<30 - layout.MMIOStart, E820RAM}, m[3])
}

func TestZeroPage(t *testing.T) {
	mem := newMem(64 << 20)
	k := fakeBzImage(4096)
	initrd := bytes.Repeat([]byte{0xab}, 10000)
	e, err := LoadBzImage(mem, k, initrd, 100)
	require.NoError(t, err)
	require.Equal(t, ProtocolLinux64, e.Protocol)
	require.EqualValues(t, layout.BzImageLoadAddr+0x200, e.RIP)
	require.EqualValues(t, layout.ZeroPage, e.Params)

	zp := make([]byte, 4096)
	_, err = mem.ReadAt(zp, layout.ZeroPage)
	require.NoError(t, err)
	require.Equal(t, uint16(0xAA55), binary.LittleEndian.Uint16(zp[hdrBootFlag:]))
	require.Equal(t, uint32(hdrSMagic), u32(zp[hdrMagic:]))
	require.Equal(t, byte(loaderUndef), zp[hdrTypeOfLoader])
	require.NotZero(t, zp[hdrLoadFlags]&canUseHeap)
	require.Equal(t, uint32(layout.CmdlineAddr), u32(zp[hdrCmdLinePtr:]))

	// The initrd sits page-aligned at the top of RAM, whole.
	addr, size := u32(zp[hdrRamdiskImage:]), u32(zp[hdrRamdiskSize:])
	require.EqualValues(t, len(initrd), size)
	require.Zero(t, addr%4096)
	require.LessOrEqual(t, uint64(addr)+uint64(size), uint64(64<<20))
	got := make([]byte, size)
	mem.ReadAt(got, int64(addr))
	require.Equal(t, initrd, got)

	// The kernel's protected-mode part is at 1 MiB.
	first := make([]byte, 4)
	mem.ReadAt(first, layout.BzImageLoadAddr)
	require.Equal(t, []byte{0xcc, 0xcc, 0xcc, 0xcc}, first)

	// The E820 table matches MemoryMap.
	mm := MemoryMap(64 << 20)
	require.EqualValues(t, len(mm), zp[bpE820Entries])
	for i, want := range mm {
		o := bpE820Table + 20*i
		require.Equal(t, want, E820Entry{u64(zp[o:]), u64(zp[o+8:]), E820Type(u32(zp[o+16:]))})
	}
}

func TestBzImageErrors(t *testing.T) {
	good := fakeBzImage(4096)
	for _, c := range []struct {
		name string
		mod  func(b []byte) []byte
		want string
	}{
		{"no boot flag", func(b []byte) []byte { b[hdrBootFlag] = 0; return b }, "no bzImage setup header"},
		{"old protocol", func(b []byte) []byte { binary.LittleEndian.PutUint16(b[hdrVersion:], 0x0204); return b }, "too old"},
		{"no 64-bit entry", func(b []byte) []byte { b[hdrXLoadFlags] = 0; return b }, "no 64-bit entry"},
		{"zImage", func(b []byte) []byte { b[hdrLoadFlags] = 0; return b }, "zImage"},
		{"truncated", func(b []byte) []byte { return b[:5*512] }, "truncated"},
		{"short header", func(b []byte) []byte { b[hdrJump+1] = 0; return b }, "header length"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseBzImage(c.mod(append([]byte(nil), good...)))
			require.ErrorIs(t, err, ErrNotKernel)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestInitrdTooBig(t *testing.T) {
	mem := newMem(32 << 20)
	_, err := LoadBzImage(mem, fakeBzImage(4096), make([]byte, 40<<20), 0)
	require.ErrorIs(t, err, ErrTooBig)
	require.ErrorContains(t, err, "does not fit in guest memory")
}

func TestPVHStartInfo(t *testing.T) {
	mem := newMem(64 << 20)
	code := []byte{0x90, 0x90, 0xf4}
	k := fakeVmlinux(16<<20, code, 8192, 16<<20+1)
	// Dirty the bss area so that zeroing is visible.
	mem.WriteAt(bytes.Repeat([]byte{0xee}, 8192), 16<<20+3)
	initrd := []byte("070701 fake cpio")
	e, err := LoadPVH(mem, k, initrd)
	require.NoError(t, err)
	require.Equal(t, ProtocolPVH, e.Protocol)
	require.EqualValues(t, 16<<20+1, e.RIP)
	require.EqualValues(t, layout.PVHStartInfo, e.Params)

	got := make([]byte, 3+8192)
	mem.ReadAt(got, 16<<20)
	require.Equal(t, code, got[:3])
	require.Equal(t, make([]byte, 8192), got[3:], "bss is zeroed")

	si := make([]byte, startInfoSize)
	mem.ReadAt(si, layout.PVHStartInfo)
	require.Equal(t, uint32(hvmStartMagic), u32(si[0:]))
	require.Equal(t, uint32(1), u32(si[4:]))
	require.Equal(t, uint32(1), u32(si[12:]), "one module")
	require.Equal(t, uint64(layout.PVHModList), u64(si[16:]))
	require.Equal(t, uint64(layout.CmdlineAddr), u64(si[24:]))
	require.Equal(t, uint64(layout.PVHMemMap), u64(si[40:]))
	mm := MemoryMap(64 << 20)
	require.EqualValues(t, len(mm), u32(si[48:]))
	for i, want := range mm {
		ent := make([]byte, memmapEntrySize)
		mem.ReadAt(ent, int64(layout.PVHMemMap+memmapEntrySize*i))
		require.Equal(t, want, E820Entry{u64(ent), u64(ent[8:]), E820Type(u32(ent[16:]))})
	}
	mod := make([]byte, modlistEntrySize)
	mem.ReadAt(mod, layout.PVHModList)
	addr, size := u64(mod), u64(mod[8:])
	require.EqualValues(t, len(initrd), size)
	data := make([]byte, size)
	mem.ReadAt(data, int64(addr))
	require.Equal(t, initrd, data)
}

func TestPVHErrors(t *testing.T) {
	_, err := ParsePVH(fakeVmlinux(16<<20, []byte{1}, 0, 0))
	require.ErrorIs(t, err, ErrNotKernel)
	require.ErrorContains(t, err, "no PVH entry note")

	k := fakeVmlinux(16<<20, make([]byte, 100), 0, 16<<20)
	_, err = ParsePVH(k[:len(k)-60])
	require.ErrorIs(t, err, ErrNotKernel)

	// A segment past the end of RAM does not fit.
	big := fakeVmlinux(60<<20, make([]byte, 100), 8<<20, 60<<20)
	_, err = LoadPVH(newMem(64<<20), big, nil)
	require.ErrorIs(t, err, ErrTooBig)
}

func TestLoadRejectsNonKernels(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"text":      []byte("#!/bin/sh\necho not a kernel\n"),
		"short elf": []byte("\x7fELF\x02\x01\x01"),
	} {
		p := filepath.Join(dir, "k")
		require.NoError(t, os.WriteFile(p, data, 0o644))
		_, err := Load(newMem(64<<20), Spec{Kernel: p, Cmdline: "x"})
		require.ErrorIs(t, err, ErrNotKernel, name)
	}
}

func TestCmdline(t *testing.T) {
	require.NoError(t, CheckCmdline("console=ttyS0"))
	require.Error(t, CheckCmdline("a\x00b"))
	require.Error(t, CheckCmdline(string(bytes.Repeat([]byte{'a'}, layout.CmdlineMax))))
	mem := newMem(1 << 20)
	require.NoError(t, writeCmdline(mem, "quiet"))
	b := make([]byte, 6)
	mem.ReadAt(b, layout.CmdlineAddr)
	require.Equal(t, "quiet\x00", string(b))
}
