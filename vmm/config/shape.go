package config

import "fmt"

// Shape is a VM's hardware: what a snapshot fixes. A VM restored from a
// snapshot has the snapshot's shape, and the warm cache (vmm/warm) keeps
// one snapshot per shape: its key is derived from every field of Shape
// (vmm/warm's key.go walks them), so a field added here is in the key
// without a second edit.
//
// Some parts of a device are each VM's own even when it is restored from
// a snapshot shared by many: the host directory behind a 9P share (the
// guest mounts it after the restore), the vsock device's socket path and
// CID, a network device's tap, MAC and addresses. Those fields carry the
// tag `snap:"each"`: they are left out of the key, and a restore takes
// them from the VM being restored, not from the snapshot. Paths of files
// whose contents shape the guest carry `snap:"file"` (the key holds the
// file's identity: path, inode, size and modification time) or
// `snap:"disk"` (path and inode: a disk's contents change with use).
type Shape struct {
	Kernel  string `json:"kernel" snap:"file"` // ELF vmlinux with a PVH note, or a bzImage
	Initrd  string `json:"initrd" snap:"file"` // initramfs, or "" for none
	Cmdline string `json:"cmdline,omitempty"`  // extra kernel command-line arguments, appended
	CPUs    int    `json:"cpus"`               // number of vCPUs
	Memory  uint64 `json:"memory"`             // guest RAM in bytes

	// Disks are virtio block devices, in order: vda, vdb, ...
	Disks []Disk `json:"disks,omitempty"`
	// Nets are virtio network devices on host taps: eth0, eth1, ...
	Nets []Net `json:"nets,omitempty"`
	// Vsock, if set, is a virtio socket device.
	Vsock *Vsock `json:"vsock,omitempty"`
	// Shares are host directories served over virtio-9p and mounted by
	// the guest's init.
	Shares []Share `json:"shares,omitempty"`
	// NoRNG drops the virtio entropy device that every VM has by default.
	NoRNG bool `json:"no_rng,omitempty"`
}

// Attach is the shape of a VM restored from a snapshot of shape s: s,
// with the parts each VM has of its own (the fields tagged `snap:"each"`)
// taken from own, the VM being restored. own may leave a kind of device
// out (no Vsock, no Shares): the snapshot's then serve, as they were; but
// it must give each network device a tap (a snapshot's is no clone's). What own gives of the rest of the hardware is not looked at,
// except for what a restore would silently lose: disks, and an entropy
// device it says to leave out.
func (s Shape) Attach(own Shape) (Shape, error) {
	refuse := func(what string) (Shape, error) {
		return Shape{}, fmt.Errorf("%w: %s is fixed by the snapshot; it cannot be changed when restoring", ErrUsage, what)
	}
	switch {
	case len(own.Disks) > 0:
		return refuse("the disks")
	case own.NoRNG && !s.NoRNG:
		return refuse("the entropy device")
	case own.Vsock != nil && s.Vsock == nil:
		return Shape{}, fmt.Errorf("%w: the snapshot has no socket device to give --vsock to", ErrUsage)
	case len(own.Shares) > 0 && len(own.Shares) != len(s.Shares):
		return Shape{}, fmt.Errorf("%w: %d shares given, the snapshot has %d 9P devices (a restore attaches directories to the devices it has)", ErrUsage, len(own.Shares), len(s.Shares))
	case len(own.Nets) != len(s.Nets):
		// Not even none: the snapshot's taps are no VM's to reuse (clones
		// on one tap would share its frames, and a snapshot's own is
		// connected to nothing).
		return Shape{}, fmt.Errorf("%w: %d network devices given (--net), the snapshot has %d: a restore gives each device it has a tap of its own", ErrUsage, len(own.Nets), len(s.Nets))
	}
	out := s
	out.Disks = append([]Disk(nil), s.Disks...)
	out.Shares = append([]Share(nil), s.Shares...)
	out.Nets = append([]Net(nil), s.Nets...)
	if own.Vsock != nil {
		v := *own.Vsock
		out.Vsock = &v
	} else if s.Vsock != nil {
		v := *s.Vsock
		out.Vsock = &v
	}
	for i, sh := range own.Shares {
		// The tag is the device's: the guest read it before the
		// snapshot was taken.
		out.Shares[i].HostDir, out.Shares[i].GuestDir, out.Shares[i].ReadOnly = sh.HostDir, sh.GuestDir, sh.ReadOnly
		out.Shares[i].View = sh.View
	}
	for i, n := range own.Nets {
		out.Nets[i] = n
	}
	return out, nil
}
