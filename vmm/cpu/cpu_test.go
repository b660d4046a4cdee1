package cpu

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/boot"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/layout"
	"github.com/kiln-vmm/kiln/vmm/memory"
)

func supported() []kvm.CPUIDEntry {
	return []kvm.CPUIDEntry{
		{Function: 0x1, EAX: 0xa20f11, EBX: 0xff0800, ECX: 0xffffffff &^ ecxHypervisor, EDX: 0xffffffff},
		{Function: 0x4, Index: 0, Flags: kvm.CPUIDFlagSignificantIndex, EAX: 0x121},
		{Function: 0x7, Index: 0, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 0xffffffff, ECX: 0xffffffff, EDX: 0xffffffff},
		{Function: 0xb, Index: 0, Flags: kvm.CPUIDFlagSignificantIndex},
		{Function: 0xb, Index: 1, Flags: kvm.CPUIDFlagSignificantIndex},
		{Function: 0x40000001, EAX: 0x01ffffff},
	}
}

func TestGuestCPUIDTopology(t *testing.T) {
	c := GuestCPUID(supported(), 3, 4, false)
	l1, _ := Find(c, 1, 0)
	require.EqualValues(t, 3, l1.EBX>>24, "APIC ID")
	require.EqualValues(t, 4, (l1.EBX>>16)&0xff, "logical processors")
	require.NotZero(t, l1.ECX&ecxHypervisor)
	require.NotZero(t, l1.EDX&edxHTT)
	require.NotZero(t, l1.ECX&ecxCX16, "hardware KVM keeps CX16")

	b0, _ := Find(c, 0xb, 0)
	b1, _ := Find(c, 0xb, 1)
	require.EqualValues(t, 3, b0.EDX)
	require.EqualValues(t, 3, b1.EDX)
	require.EqualValues(t, 4, b1.EBX)
	require.EqualValues(t, 2, b1.EAX, "2 bits of core ID")
	l4, _ := Find(c, 4, 0)
	require.EqualValues(t, 3, l4.EAX>>26)

	kv, _ := Find(c, 0x40000001, 0)
	require.Equal(t, uint32(0x01ffffff), kv.EAX, "hardware KVM keeps PV features")
}

func TestGuestCPUIDOnPVM(t *testing.T) {
	c := GuestCPUID(supported(), 0, 1, true)
	l1, _ := Find(c, 1, 0)
	require.Zero(t, l1.ECX&(ecxCX16|ecxXSAVE|ecxPOPCNT))
	require.Zero(t, l1.EDX&edxHTT)
	l7, _ := Find(c, 7, 0)
	require.Zero(t, l7.EBX&(ebxSMAP|ebxSMEP))
	kv, _ := Find(c, 0x40000001, 0)
	require.Zero(t, kv.EAX&PVMHypercallFeatures)
	require.NotZero(t, kv.EAX&1, "kvm-clock stays")
}

func TestEntryState(t *testing.T) {
	s := EntrySregs(kvm.Sregs{APICBase: 0xfee00900}, boot.ProtocolPVH)
	require.EqualValues(t, 0xfee00900, s.APICBase, "APIC base is kept")
	require.EqualValues(t, cr0PE|cr0ET, s.CR0)
	require.Zero(t, s.EFER)
	require.EqualValues(t, 1, s.CS.DB)
	require.EqualValues(t, 0, s.CS.L)
	require.EqualValues(t, 0xffffffff, s.CS.Limit)
	require.EqualValues(t, 0xb, s.CS.Type)
	require.EqualValues(t, 3, s.DS.Type)
	require.EqualValues(t, selTSS, s.TR.Selector)

	l := EntrySregs(kvm.Sregs{}, boot.ProtocolLinux64)
	require.EqualValues(t, 1, l.CS.L)
	require.EqualValues(t, 0, l.CS.DB)
	require.EqualValues(t, eferLME|eferLMA, l.EFER)
	require.EqualValues(t, layout.PML4, l.CR3)
	require.NotZero(t, l.CR0&cr0PG)

	r := EntryRegs(boot.Entry{Protocol: boot.ProtocolPVH, RIP: 0x1000000, Params: layout.PVHStartInfo})
	require.EqualValues(t, layout.PVHStartInfo, r.RBX)
	require.EqualValues(t, 2, r.RFLAGS)
	r = EntryRegs(boot.Entry{Protocol: boot.ProtocolLinux64, RIP: 0x100200, Params: layout.ZeroPage})
	require.EqualValues(t, layout.ZeroPage, r.RSI)
	require.EqualValues(t, layout.BootStack, r.RSP)
}

func TestPageTablesIdentityMapFirstGiB(t *testing.T) {
	mem := memory.FromBytes(make([]byte, 1<<20))
	require.NoError(t, WriteTables(mem, boot.ProtocolLinux64))
	q := func(a uint64) uint64 {
		b := make([]byte, 8)
		mem.ReadAt(b, int64(a))
		return binary.LittleEndian.Uint64(b)
	}
	require.Equal(t, uint64(layout.PDPT|3), q(layout.PML4))
	require.Equal(t, uint64(layout.PD|3), q(layout.PDPT))
	require.Equal(t, uint64(0x83), q(layout.PD))
	require.Equal(t, uint64(511<<21|0x83), q(layout.PD+8*511))
	// The GDT's code descriptor is 64-bit.
	require.Equal(t, uint64(0x00af9b000000ffff), q(layout.GDTAddr+8))
}

func TestLINTs(t *testing.T) {
	var s kvm.LAPICState
	SetLINTs(&s)
	require.EqualValues(t, apicModeExt, s.Regs[apicLVTLINT0+1]&7)
	require.EqualValues(t, apicModeNMI, s.Regs[apicLVTLINT1+1]&7)
}

func TestVendorAndSVMTaskRegister(t *testing.T) {
	amd := []kvm.CPUIDEntry{{Function: 0, EBX: 0x68747541, EDX: 0x69746e65, ECX: 0x444d4163}}
	require.Equal(t, "AuthenticAMD", Vendor(amd))
	require.Equal(t, "", Vendor(nil))
	s := &State{}
	s.Sregs.TR.Type = 11
	ForSVM(s)
	require.EqualValues(t, 9, s.Sregs.TR.Type)
}

func TestMissingFeatures(t *testing.T) {
	host := []kvm.CPUIDEntry{{Function: 1, ECX: 0x0000_0201}, {Function: 7, Index: 0, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 0x1}}
	guest := []kvm.CPUIDEntry{{Function: 1, ECX: 0x8000_0201, EDX: edxHTT}, {Function: 7, Index: 0, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 0x1}}
	require.Empty(t, MissingFeatures(guest, host), "the hypervisor bit and HTT are kiln's own")
	guest[1].EBX |= 0x20
	require.Equal(t, []string{"leaf 0x7.0 ebx bits 0x20"}, MissingFeatures(guest, host))
}
