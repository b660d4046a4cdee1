package boot

import "github.com/kiln-vmm/kiln/vmm/layout"

// E820Type is the type of a memory map entry (BIOS INT 15h, AX=E820h).
type E820Type uint32

// Memory map entry types.
const (
	E820RAM      E820Type = 1
	E820Reserved E820Type = 2
)

// E820Entry is one range of the guest's physical memory map.
type E820Entry struct {
	Addr, Size uint64
	Type       E820Type
}

// MemoryMap describes guest RAM as the firmware of a PC would: usable low
// memory up to the EBDA, the legacy hole up to 1 MiB reserved, then RAM,
// split around the MMIO gap by layout.RAMRegions.
func MemoryMap(memSize uint64) []E820Entry {
	m := []E820Entry{
		{0, layout.MPTableAddr, E820RAM},
		{layout.MPTableAddr, layout.HighMemory - layout.MPTableAddr, E820Reserved},
	}
	for _, r := range layout.RAMRegions(memSize) {
		start := r.Addr
		if start < layout.HighMemory {
			start = layout.HighMemory
		}
		if r.End() > start {
			m = append(m, E820Entry{start, r.End() - start, E820RAM})
		}
	}
	return m
}

// lowRAMEnd is the end of RAM below the MMIO gap.
func lowRAMEnd(memSize uint64) uint64 { return layout.RAMRegions(memSize)[0].End() }
