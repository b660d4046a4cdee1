package cpu

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

func TestCPUIDChanges(t *testing.T) {
	s := kvm.CPUIDEntry{Function: 1, ECX: 1<<13 | 1<<23, EBX: 0x00020800}
	g := kvm.CPUIDEntry{Function: 1, ECX: 1<<23 | 1<<31 | 1<<5, EBX: 0x01010800}
	require.Equal(t, []string{
		"leaf 0x1.0 ebx: 0x00020800 -> 0x01010800 (bits 31-24: initial APIC ID, 23-16: logical processors)",
		"leaf 0x1.0 ecx: sets bit5 hypervisor clears cx16",
	}, DescribeChanges(s, g))
	require.Empty(t, DescribeChanges(s, s))
}
