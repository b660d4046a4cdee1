package boot

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/layout"
)

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

func TestMPTableLayout(t *testing.T) {
	for _, n := range []int{1, 2, 7, MaxCPUs} {
		b, err := MPTable(n)
		require.NoError(t, err)
		fp := b[:mpFloatingSize]
		require.Equal(t, "_MP_", string(fp[:4]))
		require.Zero(t, sum(fp), "floating pointer checksum")
		require.Equal(t, byte(4), fp[9])
		tableAddr := binary.LittleEndian.Uint32(fp[4:])
		require.EqualValues(t, layout.MPTableAddr+mpFloatingSize, tableAddr)

		tbl := b[mpFloatingSize:]
		require.Equal(t, "PCMP", string(tbl[:4]))
		length := binary.LittleEndian.Uint16(tbl[4:])
		require.EqualValues(t, len(tbl), length)
		require.Zero(t, sum(tbl[:length]), "table checksum")
		require.EqualValues(t, layout.LAPICAddr, binary.LittleEndian.Uint32(tbl[36:]))

		// Walk the entries: n processors with APIC IDs 0..n-1, CPU 0 the
		// bootstrap processor, then bus, IOAPIC and interrupt entries.
		count := int(binary.LittleEndian.Uint16(tbl[34:]))
		off, procs, ioapics, ints := mpHeaderSize, 0, 0, 0
		for i := 0; i < count; i++ {
			switch tbl[off] {
			case mpEntryProcessor:
				require.Equal(t, byte(procs), tbl[off+1])
				require.NotZero(t, tbl[off+3]&mpCPUEnabled)
				require.Equal(t, procs == 0, tbl[off+3]&mpCPUBootstrap != 0)
				procs++
				off += mpProcSize
			case mpEntryIOAPIC:
				require.Equal(t, byte(n), tbl[off+1], "IOAPIC ID follows the CPUs")
				require.EqualValues(t, layout.IOAPICAddr, binary.LittleEndian.Uint32(tbl[off+4:]))
				ioapics++
				off += 8
			case mpEntryIOInt:
				require.Equal(t, tbl[off+5], tbl[off+7], "ISA IRQ n on IOAPIC pin n")
				ints++
				off += 8
			default:
				off += 8
			}
		}
		require.Equal(t, int(length), off)
		require.Equal(t, n, procs)
		require.Equal(t, 1, ioapics)
		require.Equal(t, ioapicPins, ints)
		require.LessOrEqual(t, layout.MPTableAddr+len(b), layout.HighMemory)
	}
	_, err := MPTable(0)
	require.Error(t, err)
	_, err = MPTable(MaxCPUs + 1)
	require.Error(t, err)
}
