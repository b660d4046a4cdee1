// Package trace shows what happens at the boundary between a guest and
// kiln: every VM exit, in words (kiln run --trace), and counts and times
// of them when the VM ends (kiln run --stats).
//
// A virtual CPU runs guest code on the real processor until the guest does
// something the hardware will not let it do alone. Then the processor
// leaves the guest: a VM exit (Intel VMX's name; AMD SVM calls it
// #VMEXIT). KVM handles most exits inside the host kernel, such as page
// faults on guest RAM, timer ticks and interrupts of the in-kernel
// interrupt controllers, and goes straight back in. The others end the
// KVM_RUN ioctl and reach the VMM with an exit reason in struct kvm_run:
// KVM_EXIT_IO for an in or out instruction on a port no in-kernel device
// owns, KVM_EXIT_MMIO for a load or store to a guest-physical address that
// is not RAM, KVM_EXIT_HLT, KVM_EXIT_SHUTDOWN for a triple fault, and a
// few more (Documentation/virt/kvm/api.rst, "kvm_run"). Every one of those
// costs a round trip from guest to host user space and back, so the
// number of exits, and which device causes them, is the first thing to
// look at when a VM is slow.
//
// The run loop (vmm/machine) hands each exit to an observer only when
// --trace or --stats asked for one; otherwise it pays one nil check.
// The observer fills an Exit: vCPU, reason, times, and for port and MMIO
// exits the Access with the device the bus routed it to. Then:
//
//   - a Tracer prints the exit as one line, with the device's own words for
//     the register access ("serial: THR <- 'h'", "virtio-rng: Status <-
//     0xf (...)") from every device, each implementing Describer, and the
//     register state for a halt, a shutdown or an error;
//   - Stats counts exits and the time spent on them per exit reason, per
//     device and per vCPU; its Report, printed by Report.WriteTo, adds
//     the phases of the boot: VMM setup, kernel, user space.
//
// The kinds of exit --trace selects are config.ExitClass values (the
// user's choice is part of the config); ClassOf says which kind an exit
// reason is.
package trace
