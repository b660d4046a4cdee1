package config

import (
	"fmt"
	"net"
)

// Disk is a virtio block device backed by a raw image file.
type Disk struct {
	Path     string `json:"path" snap:"disk"`
	ReadOnly bool   `json:"ro,omitempty"`
}

// DiskName is what the guest calls the i-th disk: vda, vdb, ...
func DiskName(i int) string {
	if i < 26 {
		return "vd" + string(rune('a'+i))
	}
	return fmt.Sprintf("vd%c%c", 'a'+i/26-1, 'a'+i%26)
}

// Vsock is a virtio socket device: the guest's CID and the unix socket
// through which host programs reach it (docs/virtio.md).
type Vsock struct {
	CID  uint64 `json:"cid" snap:"each"`
	Path string `json:"path" snap:"each"`
}

// Net is a virtio network device on a host tap, and how the guest's init
// configures it (Config.Job). Every part of it is each VM's own: a VM
// restored from a snapshot gets the network devices the snapshot has,
// each on the tap, with the MAC address and addresses, given at the
// restore (Shape.Attach), so clones of one snapshot never share a tap.
type Net struct {
	// Tap is the host tap the device's frames go through. In a
	// snapshot's boot, "" asks for a tap connected to nothing
	// (machine.TakeSnapshot): each VM restored from it brings its own.
	Tap string           `json:"tap" snap:"each"`
	MAC net.HardwareAddr `json:"mac,omitempty" snap:"each"` // nil: one derived from the tap name
	// IP is ADDR/PREFIX for the guest's interface, Gateway its default
	// route; without IP the interface comes up with no address.
	IP      string `json:"ip,omitempty" snap:"each"`
	Gateway string `json:"gw,omitempty" snap:"each"`
}

// Address is the MAC address the device has: the one given, or the one
// derived from the tap's name.
func (n Net) Address() net.HardwareAddr {
	if len(n.MAC) == 6 {
		return n.MAC
	}
	return DefaultMAC(n.Tap)
}

// NetName is what the guest calls the i-th network device: eth0, eth1, ...
func NetName(i int) string { return fmt.Sprintf("eth%d", i) }

// DefaultMAC is the MAC address of a network device on tap when none is
// given: locally administered and unicast, derived from the tap's name, so
// it is the same on every run.
func DefaultMAC(tap string) net.HardwareAddr {
	h := uint32(2166136261) // FNV-1a
	for _, c := range []byte(tap) {
		h = (h ^ uint32(c)) * 16777619
	}
	return net.HardwareAddr{0x02, 0x4b, byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h)}
}

// Share is a host directory served to the guest over virtio-9p
// (devices/share) and mounted by its init.
type Share struct {
	HostDir  string `json:"host_dir" snap:"each"`
	GuestDir string `json:"guest_dir" snap:"each"` // where init mounts it
	Tag      string `json:"tag"`                   // the 9P mount tag the guest sees
	ReadOnly bool   `json:"ro,omitempty" snap:"each"`
	// View, if set, is what the share's root holds instead of HostDir
	// itself: HostDir under the one name View.Name, or only the files
	// View.Files of it (devices/share/view.go). OCI bind mounts are
	// shared so.
	View *ShareView `json:"view,omitempty" snap:"each"`
}

// ShareView is a share's view (devices/share.View).
type ShareView struct {
	Name  string   `json:"name,omitempty"`
	Files []string `json:"files,omitempty"`
}

// ShareTag is the mount tag of the i-th share when none is given.
func ShareTag(i int) string { return fmt.Sprintf("kiln%d", i) }
