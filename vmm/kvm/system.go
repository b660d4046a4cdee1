package kvm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// APIVersion is the only KVM API version there has ever been (KVM_API_VERSION).
const APIVersion = 12

// DevicePath is where the KVM device lives.
const DevicePath = "/dev/kvm"

// System is an open /dev/kvm: the handle for host-wide queries and for
// creating VMs.
type System struct {
	fd int
}

// Open opens /dev/kvm and checks the API version and the capabilities kiln
// needs. A missing or inaccessible device yields an error wrapping ErrNoKVM.
func Open() (*System, error) {
	return OpenPath(DevicePath)
}

// OpenPath is Open for another device path (tests use it).
func OpenPath(path string) (*System, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		why := "cannot open"
		switch err {
		case unix.ENOENT:
			why = "does not exist (is the kvm module loaded? is this a VM without nested virtualization?)"
		case unix.EACCES, unix.EPERM:
			why = "permission denied (add yourself to the kvm group, or run as root)"
		}
		return nil, fmt.Errorf("%w: %s %s: %v", ErrNoKVM, path, why, err)
	}
	s := &System{fd: fd}
	v, err := ioctl(fd, kvmGetAPIVersion, 0)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %s is not a KVM device (%v)", ErrNoKVM, path, err)
	}
	if v != APIVersion {
		s.Close()
		return nil, fmt.Errorf("%w: %s has API version %d, want %d", ErrNoKVM, path, v, APIVersion)
	}
	for _, c := range RequiredCaps {
		if n, _ := s.CheckExtension(c); n <= 0 {
			s.Close()
			return nil, fmt.Errorf("%w: %s", ErrMissingCapability, c)
		}
	}
	return s, nil
}

// Close closes /dev/kvm. VMs created from it stay valid.
func (s *System) Close() error { return unix.Close(s.fd) }

// CheckExtension returns KVM_CHECK_EXTENSION for c: 0 if absent, otherwise
// a positive, capability-specific value.
func (s *System) CheckExtension(c Cap) (int, error) {
	r, err := ioctl(s.fd, kvmCheckExtension, uintptr(c))
	return int(r), err
}

// MaxVCPUs returns the most vCPUs one VM may have on this host.
func (s *System) MaxVCPUs() int {
	if n, _ := s.CheckExtension(CapMaxVCPUs); n > 0 {
		return n
	}
	if n, _ := s.CheckExtension(CapNrVCPUs); n > 0 {
		return n
	}
	return 4 // the API's documented minimum
}

// SupportedCPUID returns the CPUID leaves KVM can present to a guest on
// this host (KVM_GET_SUPPORTED_CPUID), the starting point of a guest CPUID.
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	c := new(cpuid2)
	c.NEnt = maxCPUIDEntries
	if _, err := ioctlPtr(s.fd, kvmGetSupportedCPUID, c); err != nil {
		return nil, err
	}
	return append([]CPUIDEntry(nil), c.Entries[:c.NEnt]...), nil
}

// vcpuMmapSize is the size of the shared kvm_run area of each vCPU.
func (s *System) vcpuMmapSize() (int, error) {
	r, err := ioctl(s.fd, kvmGetVCPUMmapSize, 0)
	return int(r), err
}

// CreateVM creates an empty virtual machine: no memory, no vCPUs.
func (s *System) CreateVM() (*VM, error) {
	fd, err := ioctl(s.fd, kvmCreateVM, 0)
	if err != nil {
		return nil, err
	}
	size, err := s.vcpuMmapSize()
	if err != nil {
		unix.Close(int(fd))
		return nil, err
	}
	return &VM{fd: int(fd), runSize: size}, nil
}

// IsPVM reports whether /dev/kvm is provided by kvm-pvm, a software
// nested-virtualization KVM that needs guest adaptations (see docs/pvm.md).
func IsPVM() bool {
	_, err := os.Stat("/sys/module/kvm_pvm")
	return err == nil
}

// TSCKHz asks a throwaway vCPU for the TSC frequency KVM gives guests:
// the ioctl is a vCPU's, as each could have its own.
func (s *System) TSCKHz() (uint32, error) {
	vm, err := s.CreateVM()
	if err != nil {
		return 0, err
	}
	defer vm.Close()
	v, err := vm.CreateVCPU(0)
	if err != nil {
		return 0, err
	}
	defer v.Close()
	return v.TSCKHz()
}
