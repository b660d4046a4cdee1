package memory

import "unsafe"

// HostAddr is the host virtual address of the region, for KVM.
func (r Region) HostAddr() uintptr { return uintptr(unsafe.Pointer(&r.Host[0])) }
