package kvm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// VM is one virtual machine: its guest-physical address space and its
// interrupt controllers. vCPUs are created from it.
type VM struct {
	fd      int
	runSize int
}

// FD is the VM's descriptor, for a seccomp filter that allows its
// ioctls on it alone (vmm/seccomp). Nothing else should use it.
func (vm *VM) FD() int { return vm.fd }

// Close closes the VM's file descriptor.
func (vm *VM) Close() error { return unix.Close(vm.fd) }

// SetUserMemoryRegion maps host memory at hostAddr into the guest-physical
// address space at guestAddr (KVM_SET_USER_MEMORY_REGION). Guest accesses
// there go straight to RAM; accesses anywhere else exit as MMIO.
func (vm *VM) SetUserMemoryRegion(slot uint32, guestAddr, size uint64, hostAddr uintptr) error {
	r := userspaceMemoryRegion{
		Slot:          slot,
		GuestPhysAddr: guestAddr,
		MemorySize:    size,
		UserspaceAddr: uint64(hostAddr),
	}
	if _, err := ioctlPtr(vm.fd, kvmSetUserMemoryRegion, &r); err != nil {
		return fmt.Errorf("slot %d at %#x (%d MiB): %w", slot, guestAddr, size>>20, err)
	}
	return nil
}

// SetTSSAddr places the three pages Intel VT needs for real-mode emulation
// (KVM_SET_TSS_ADDR). They must lie outside RAM and MMIO.
func (vm *VM) SetTSSAddr(addr uint64) error {
	_, err := ioctl(vm.fd, kvmSetTSSAddr, uintptr(addr))
	return err
}

// SetIdentityMapAddr places the page KVM uses for an identity page table
// while the guest runs unpaged on Intel VT (KVM_SET_IDENTITY_MAP_ADDR).
func (vm *VM) SetIdentityMapAddr(addr uint64) error {
	_, err := ioctlPtr(vm.fd, kvmSetIdentityMapAddr, &addr)
	return err
}

// CreateIRQChip creates the in-kernel interrupt controllers: a pair of
// 8259 PICs, an IOAPIC, and a local APIC per vCPU (KVM_CREATE_IRQCHIP).
func (vm *VM) CreateIRQChip() error {
	_, err := ioctl(vm.fd, kvmCreateIRQChip, 0)
	return err
}

// CreatePIT2 creates the in-kernel 8254 timer on ports 0x40-0x43, with a
// dummy PC speaker on port 0x61 (KVM_CREATE_PIT2).
func (vm *VM) CreatePIT2() error {
	c := pitConfig{Flags: pitSpeakerDummy}
	_, err := ioctlPtr(vm.fd, kvmCreatePIT2, &c)
	return err
}

// SetIRQLine sets the level of an interrupt line of the in-kernel
// PIC/IOAPIC (KVM_IRQ_LINE).
func (vm *VM) SetIRQLine(irq uint32, high bool) error {
	l := irqLevel{IRQ: irq}
	if high {
		l.Level = 1
	}
	_, err := ioctlPtr(vm.fd, kvmIRQLine, &l)
	return err
}

// IRQ is one interrupt line of the VM, as a device sees it: Trigger raises
// an edge (the line goes high, then low).
type IRQ struct {
	vm  *VM
	irq uint32
}

// IRQLine returns the interrupt line irq as a Trigger-able IRQ.
func (vm *VM) IRQLine(irq uint32) *IRQ { return &IRQ{vm: vm, irq: irq} }

// Trigger pulses the line: an edge-triggered interrupt.
func (q *IRQ) Trigger() error {
	if err := q.vm.SetIRQLine(q.irq, true); err != nil {
		return err
	}
	return q.vm.SetIRQLine(q.irq, false)
}

// RegisterIRQFD makes a write to the eventfd efd raise interrupt gsi
// (KVM_IRQFD), so a device goroutine can interrupt the guest without a
// system call into the VM's run loop.
func (vm *VM) RegisterIRQFD(efd int, gsi uint32) error {
	a := irqfd{FD: uint32(efd), GSI: gsi}
	_, err := ioctlPtr(vm.fd, kvmIRQFD, &a)
	return err
}

// RegisterIOEventFD makes a guest write of length size to MMIO address addr
// signal the eventfd efd inside the kernel, without a VM exit to user space
// (KVM_IOEVENTFD). With match, only writes of value data count.
func (vm *VM) RegisterIOEventFD(efd int, addr uint64, size uint32, match bool, data uint64) error {
	a := ioeventfd{Addr: addr, Len: size, FD: int32(efd), Datamatch: data}
	if match {
		a.Flags |= 1 << 0 // KVM_IOEVENTFD_FLAG_DATAMATCH
	}
	_, err := ioctlPtr(vm.fd, kvmIOEventFD, &a)
	return err
}

// CreateVCPU creates vCPU id and maps its shared kvm_run area.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	fd, err := ioctl(vm.fd, kvmCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("vCPU %d: %w", id, err)
	}
	run, err := unix.Mmap(int(fd), 0, vm.runSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(int(fd))
		return nil, fmt.Errorf("vCPU %d: mmap kvm_run: %w", id, err)
	}
	return &VCPU{id: id, fd: int(fd), run: run}, nil
}
