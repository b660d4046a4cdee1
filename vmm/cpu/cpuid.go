package cpu

import (
	"math/bits"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// CPUID leaves and bits kiln adjusts.
const (
	leafFeatures    = 0x1
	leafCache       = 0x4
	leafExtended    = 0x7
	leafTopology    = 0xb
	leafKVMSig      = 0x40000000
	leafKVMFeatures = 0x40000001

	// leaf 1 ECX
	ecxPCLMULQDQ  = 1 << 1
	ecxFMA        = 1 << 12
	ecxCX16       = 1 << 13
	ecxMOVBE      = 1 << 22
	ecxPOPCNT     = 1 << 23
	ecxAES        = 1 << 25
	ecxXSAVE      = 1 << 26
	ecxOSXSAVE    = 1 << 27
	ecxAVX        = 1 << 28
	ecxF16C       = 1 << 29
	ecxRDRAND     = 1 << 30
	ecxHypervisor = 1 << 31
	// leaf 1 EDX
	edxHTT = 1 << 28

	// leaf 7.0 EBX
	ebxFSGSBASE = 1 << 0
	ebxBMI1     = 1 << 3
	ebxAVX2     = 1 << 5
	ebxSMEP     = 1 << 7
	ebxBMI2     = 1 << 8
	ebxERMS     = 1 << 9
	ebxINVPCID  = 1 << 10
	ebxRDSEED   = 1 << 18
	ebxADX      = 1 << 19
	ebxSMAP     = 1 << 20
	ebxSHA      = 1 << 29
	ebxAVX512   = 1<<16 | 1<<17 | 1<<21 | 1<<26 | 1<<27 | 1<<28 | 1<<30 | 1<<31
	// leaf 7.0 ECX
	ecxUMIP  = 1 << 2
	ecxRDPID = 1 << 22
	// leaf 7.0 EDX
	edxFSRM = 1 << 4

	// KVM paravirtual features, leaf 0x40000001 EAX
	// (Documentation/virt/kvm/x86/cpuid.rst).
	kvmFeatureAsyncPF      = 1 << 4
	kvmFeaturePVUnhalt     = 1 << 7
	kvmFeaturePVSendIPI    = 1 << 11
	kvmFeaturePVSchedYield = 1 << 13
	kvmFeatureAsyncPFInt   = 1 << 14
	kvmFeatureMapGPARange  = 1 << 16
)

// PVMHypercallFeatures are the KVM PV features that work by hypercall.
// Under kvm-pvm hypercalls never complete, so a guest that used them would
// spin forever; the clock and other MSR-based features stay.
const PVMHypercallFeatures = kvmFeatureAsyncPF | kvmFeaturePVUnhalt | kvmFeaturePVSendIPI |
	kvmFeaturePVSchedYield | kvmFeatureAsyncPFInt | kvmFeatureMapGPARange

// pvmLeaf1ECX and friends are instructions kvm-pvm's emulator lacks
// (cmpxchg16b, xsave, popcnt) and precautions for the same reason. The
// kernel command line clears them too (config.PVMClearCPUID): not every
// bit is honoured from CPUID alone.
const (
	pvmLeaf1ECX = ecxCX16 | ecxXSAVE | ecxOSXSAVE | ecxPOPCNT | ecxAVX | ecxFMA |
		ecxF16C | ecxRDRAND | ecxMOVBE | ecxAES | ecxPCLMULQDQ
	pvmLeaf7EBX = ebxFSGSBASE | ebxBMI1 | ebxAVX2 | ebxSMEP | ebxBMI2 | ebxERMS |
		ebxINVPCID | ebxRDSEED | ebxADX | ebxSMAP | ebxSHA | ebxAVX512
	pvmLeaf7ECX = ecxUMIP | ecxRDPID
	pvmLeaf7EDX = edxFSRM
)

// GuestCPUID derives vCPU id's CPUID table from what KVM supports: its APIC
// ID and the topology of ncpus single-threaded cores in one package, the
// hypervisor bit, and on a PVM host the masking described above.
func GuestCPUID(supported []kvm.CPUIDEntry, id, ncpus int, pvm bool) []kvm.CPUIDEntry {
	out := make([]kvm.CPUIDEntry, 0, len(supported))
	for _, e := range supported {
		switch e.Function {
		case leafFeatures:
			e.EBX = e.EBX&0x0000ffff | uint32(id)<<24 | uint32(min(ncpus, 255))<<16
			if ncpus > 1 {
				e.EDX |= edxHTT
			} else {
				e.EDX &^= edxHTT
			}
			e.ECX |= ecxHypervisor
			if pvm {
				e.ECX &^= pvmLeaf1ECX
			}
		case leafCache:
			// EAX[31:26]: cores per package, less one.
			e.EAX = e.EAX&0x03ffffff | uint32(min(ncpus, 64)-1)<<26
		case leafExtended:
			if pvm && e.Index == 0 {
				e.EBX &^= pvmLeaf7EBX
				e.ECX &^= pvmLeaf7ECX
				e.EDX &^= pvmLeaf7EDX
			}
		case leafTopology:
			// Subleaf 0 is the SMT level (one thread per core), subleaf 1
			// the core level; EDX is the x2APIC ID at every level.
			e.EDX = uint32(id)
			switch e.Index {
			case 0:
				e.EAX, e.EBX, e.ECX = 0, 1, 1<<8
			case 1:
				e.EAX = uint32(bits.Len(uint(ncpus - 1)))
				e.EBX, e.ECX = uint32(ncpus), 1|2<<8
			default:
				e.EAX, e.EBX, e.ECX = 0, 0, e.Index
			}
		case leafKVMFeatures:
			if pvm {
				e.EAX &^= PVMHypercallFeatures
			}
		}
		out = append(out, e)
	}
	return out
}

// Find returns the entry for function/index, if present.
func Find(entries []kvm.CPUIDEntry, function, index uint32) (kvm.CPUIDEntry, bool) {
	for _, e := range entries {
		if e.Function == function && (e.Index == index || e.Flags&kvm.CPUIDFlagSignificantIndex == 0) {
			return e, true
		}
	}
	return kvm.CPUIDEntry{}, false
}
