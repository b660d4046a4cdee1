package boot

import (
	"fmt"

	"github.com/kiln-vmm/kiln/vmm/layout"
)

// The MP table (Intel MultiProcessor Specification 1.4, chapter 4) tells a
// kernel without ACPI which CPUs exist, where the IOAPIC is, and how the
// ISA interrupt lines reach it. It is two structures: a 16-byte floating
// pointer ("_MP_") that the kernel finds by scanning low memory, pointing at
// a configuration table ("PCMP") followed by one entry per CPU, bus, IOAPIC
// and interrupt line. Every structure carries a checksum: its bytes sum to 0.
const (
	mpFloatingSize = 16
	mpHeaderSize   = 44
	mpProcSize     = 20
	mpBusSize      = 8
	mpIOAPICSize   = 8
	mpIntSize      = 8
	mpSpecRev      = 4 // version 1.4

	mpEntryProcessor = 0
	mpEntryBus       = 1
	mpEntryIOAPIC    = 2
	mpEntryIOInt     = 3
	mpEntryLocalInt  = 4

	mpCPUEnabled   = 1 << 0
	mpCPUBootstrap = 1 << 1
	mpIOAPICOn     = 1 << 0

	mpIntINT    = 0
	mpIntNMI    = 1
	mpIntExtINT = 3

	apicVersion   = 0x14
	ioapicVersion = 0x11
	ioapicPins    = 24

	// CPU signature and feature flags in processor entries: family 6,
	// with an FPU and a local APIC (as Firecracker and kvmtool report).
	cpuSignature = 0x600
	cpuFeatures  = 1<<0 | 1<<9
)

// MaxCPUs is the most vCPUs kiln describes in an MP table.
const MaxCPUs = 64

// MPTable builds the MP floating pointer and configuration table for ncpus
// CPUs with APIC IDs 0..ncpus-1 and one IOAPIC, to be written at
// layout.MPTableAddr.
func MPTable(ncpus int) ([]byte, error) {
	if ncpus < 1 || ncpus > MaxCPUs {
		return nil, fmt.Errorf("MP table: %d CPUs, want 1 to %d", ncpus, MaxCPUs)
	}
	ioapicID := byte(ncpus)
	var entries []byte
	for i := 0; i < ncpus; i++ {
		e := make([]byte, mpProcSize)
		e[0] = mpEntryProcessor
		e[1] = byte(i) // local APIC ID
		e[2] = apicVersion
		e[3] = mpCPUEnabled
		if i == 0 {
			e[3] |= mpCPUBootstrap
		}
		le.PutUint32(e[4:], cpuSignature)
		le.PutUint32(e[8:], cpuFeatures)
		entries = append(entries, e...)
	}
	entries = append(entries, mpEntryBus, 0, 'I', 'S', 'A', ' ', ' ', ' ')
	io := make([]byte, mpIOAPICSize)
	io[0], io[1], io[2], io[3] = mpEntryIOAPIC, ioapicID, ioapicVersion, mpIOAPICOn
	le.PutUint32(io[4:], layout.IOAPICAddr)
	entries = append(entries, io...)
	// ISA IRQ n is wired to IOAPIC pin n, edge-triggered, active high
	// (flags 0: "conforms to the bus").
	for irq := 0; irq < ioapicPins; irq++ {
		entries = append(entries, mpEntryIOInt, mpIntINT, 0, 0, 0, byte(irq), ioapicID, byte(irq))
	}
	// The 8259 PIC reaches CPU 0's LINT0 as ExtINT; NMI goes to LINT1 of all.
	entries = append(entries, mpEntryLocalInt, mpIntExtINT, 0, 0, 0, 0, 0, 0)
	entries = append(entries, mpEntryLocalInt, mpIntNMI, 0, 0, 0, 0, 0xff, 1)
	count := ncpus + 1 + 1 + ioapicPins + 2

	table := layout.MPTableAddr + mpFloatingSize
	hdr := make([]byte, mpHeaderSize)
	copy(hdr, "PCMP")
	le.PutUint16(hdr[4:], uint16(mpHeaderSize+len(entries)))
	hdr[6] = mpSpecRev
	copy(hdr[8:], "KILN    ")
	copy(hdr[16:], "KILN MICROVM")
	le.PutUint16(hdr[34:], uint16(count))
	le.PutUint32(hdr[36:], layout.LAPICAddr)
	body := append(hdr, entries...)
	body[7] = checksum(body)

	fp := make([]byte, mpFloatingSize)
	copy(fp, "_MP_")
	le.PutUint32(fp[4:], uint32(table))
	fp[8] = 1 // length in 16-byte units
	fp[9] = mpSpecRev
	fp[10] = checksum(fp)

	out := append(fp, body...)
	if layout.MPTableAddr+len(out) > layout.HighMemory {
		return nil, fmt.Errorf("MP table for %d CPUs is %d bytes, too big for its area", ncpus, len(out))
	}
	return out, nil
}

// checksum returns the byte that makes b sum to zero (b's own checksum
// field must be zero when called).
func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}
