package oci

import (
	"path/filepath"

	"github.com/kiln-vmm/kiln/vmm/config"
)

// The VM shape: every container runs in the same kind of VM, so that a
// single warm snapshot (docs/snapshots.md) serves every container on the
// machine. A snapshot fixes the devices, their order and their tags; only
// the directories behind the 9P devices and the vsock device's host path
// change at a restore. So the shape has a fixed number of share slots,
// kiln0 to kiln{Slots-1}: slot 0 holds the container's root file system,
// the next ones the host directories behind its bind mounts, and the
// slots a container does not use are backed by an empty read-only
// directory, which the guest never mounts. A container on the engine's
// network has a network device as well (network.go): the shape has two
// forms, with and without it, and a warm snapshot each; the device's tap,
// MAC address and addresses are each container's own.
const (
	// Slots is the number of 9P devices: the root and up to Slots-1
	// directories for bind mounts (a file bind mount shares the file's
	// directory; binds from one directory share one slot).
	Slots = 8
	// CPUs and Memory are the guest's when config.json sets no limit
	// (linux.resources makes another size: resources.go): guest RAM is
	// mapped privately from the snapshot, so a container's VM costs the
	// pages it touches, not Memory.
	CPUs   = 1
	Memory = 256 << 20
	// GuestCID is the guest's vsock CID; VMs do not share a vsock
	// device, so every guest can have the same one.
	GuestCID = 3
	// ControlPort is the host vsock port of the control connection; the
	// stdio streams are the ports after it (guest/contract).
	ControlPort = 1024
)

// SlotTag is the mount tag of share slot i.
func SlotTag(i int) string { return config.ShareTag(i) }

// ShapeOf is the VM of the shape, of size size, with its shares backed by
// shares (Slots of them) and its vsock device at vsockPath. The size is
// in the warm snapshot's key (vmm/warm): each size has a snapshot of its
// own.
func ShapeOf(kernel, initrd string, size Size, shares []config.Share, vsockPath string) config.Shape {
	return config.Shape{
		Kernel: kernel,
		Initrd: initrd,
		CPUs:   size.CPUs,
		Memory: size.Memory,
		Shares: shares,
		Vsock:  &config.Vsock{CID: GuestCID, Path: vsockPath},
	}
}

// EmptyShares backs every slot with the directory empty.
func EmptyShares(empty string) []config.Share {
	s := make([]config.Share, Slots)
	for i := range s {
		s[i] = emptySlot(empty, i)
	}
	return s
}

func emptySlot(empty string, i int) config.Share {
	return config.Share{HostDir: empty, GuestDir: filepath.Join("/kiln/slots", SlotTag(i)), Tag: SlotTag(i), ReadOnly: true}
}

// VMSize is the size of the plan's VM: DefaultSize for a plan that has
// none.
func (p *Plan) VMSize() Size {
	if p.Size.CPUs == 0 || p.Size.Memory == 0 {
		return DefaultSize
	}
	return p.Size
}
