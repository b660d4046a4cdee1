// Package kvm is a thin, typed layer over the Linux KVM API (/dev/kvm).
//
// KVM turns the host kernel into a hypervisor. A user-space VMM talks to it
// through three kinds of file descriptor, each with its own ioctls, and this
// package gives each one a Go type:
//
//	System  the open /dev/kvm: API version, capabilities, supported CPUID
//	VM      a virtual machine: guest memory slots, interrupt controllers
//	VCPU    one virtual CPU: registers, CPUID, MSRs, and KVM_RUN
//
// KVM_RUN enters the guest and returns when the guest does something the
// kernel wants user space to handle: a port I/O instruction, an access to
// guest-physical memory that is not RAM (MMIO), a shutdown, an error. The
// reason and its details are written into a page shared between the kernel
// and the VMM (struct kvm_run), which VCPU.Exit decodes.
//
// Reference: Documentation/virt/kvm/api.rst in the Linux source, and
// include/uapi/linux/kvm.h for the structure layouts mirrored here. Every
// ioctl number is in ioctls.go; all pointer work is in *_unsafe.go.
package kvm
