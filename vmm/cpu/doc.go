// Package cpu prepares a vCPU to enter a kernel: what CPUID tells the guest
// about its processor, the model-specific registers a PC firmware would have
// set, and the register state each boot protocol asks for at the entry
// point: 32-bit protected mode with paging off for PVH, or 64-bit long mode
// with identity-mapped page tables for the Linux 64-bit boot protocol.
//
// References: Intel SDM vol. 3A chapter 9 (processor initialization), the
// PVH boot ABI (xen/docs/misc/pvh.pandoc), Documentation/x86/boot.rst
// ("64-bit Boot Protocol"), Documentation/virt/kvm/x86/cpuid.rst.
package cpu
