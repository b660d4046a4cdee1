// Package boot puts a Linux kernel, its initramfs and the tables it reads at
// start-up into guest memory, following one of two boot protocols:
//
//   - The Linux x86 boot protocol (Documentation/x86/boot.rst) for a
//     bzImage: a real-mode setup header tells the loader where things go;
//     the loader fills a "zero page" (struct boot_params) with the header,
//     the command line pointer, the initrd and an E820 memory map, and
//     enters the 64-bit entry point at load address + 0x200 with RSI
//     pointing at the zero page. The compressed kernel then decompresses
//     itself, which is slow on a software KVM.
//
//   - PVH (xen/include/public/arch-x86/hvm/start_info.h), for an ELF
//     vmlinux that carries a XEN_ELFNOTE_PHYS32_ENTRY note: the loader
//     copies the ELF segments to their physical addresses, writes a
//     struct hvm_start_info (command line, modules, memory map), and
//     enters the note's 32-bit entry point with paging off and EBX
//     pointing at the start info. No decompression: this is kiln's default.
//
// Both need an MP table (Intel MultiProcessor Specification 1.4) so that a
// kernel without ACPI finds the CPUs and the IOAPIC; mptable.go writes it.
// Every address used here comes from vmm/layout.
package boot
