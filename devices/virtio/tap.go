package virtio

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Tap is a host tap device opened for a virtio-net back end: frames the
// guest sends are written to it, frames the host routes to it are read.
// Each frame carries a virtio-net header in front (IFF_VNET_HDR), so
// checksum and segmentation offloads pass between guest and host kernel
// without kiln touching the packets.
type Tap struct {
	Name string
	fd   int
}

// ErrNoTap says the tap device does not exist or cannot be opened.
var ErrNoTap = errors.New("tap device unavailable")

// netHdrLen is struct virtio_net_hdr_v1 (with num_buffers), the header
// both the guest driver (VERSION_1) and the tap exchange.
const netHdrLen = 12

// ifreq is struct ifreq as TUNSETIFF reads it: a name and flags.
type ifreq struct {
	Name  [unix.IFNAMSIZ]byte
	Flags uint16
	_     [22]byte
}

// OpenTap opens the existing tap device name. kiln does not create taps:
// that needs privileges and a network plan that belong to the host's
// administrator (docs/virtio.md shows how).
func OpenTap(name string) (*Tap, error) {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("%w: bad tap name %q", ErrNoTap, name)
	}
	if _, err := os.Stat("/sys/class/net/" + name + "/tun_flags"); err != nil {
		return nil, fmt.Errorf("%w: tap %s does not exist (create it with: ip tuntap add %s mode tap; ip link set %s up)", ErrNoTap, name, name, name)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open /dev/net/tun: %v", ErrNoTap, err)
	}
	var req ifreq
	copy(req.Name[:], name)
	req.Flags = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); e != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: TUNSETIFF %s: %v (is it a tap, not a tun? does another process hold it?)", ErrNoTap, name, e)
	}
	hdr := int32(netHdrLen)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETVNETHDRSZ, uintptr(unsafe.Pointer(&hdr))); e != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: TUNSETVNETHDRSZ %s: %v", ErrNoTap, name, e)
	}
	return &Tap{Name: name, fd: fd}, nil
}

// SetOffload tells the tap which offloads the guest accepts on received
// frames (TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6): the host may then hand over
// large and partially checksummed frames.
func (t *Tap) SetOffload(flags uint) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(t.fd), unix.TUNSETOFFLOAD, uintptr(flags)); e != 0 {
		return fmt.Errorf("TUNSETOFFLOAD %s: %v", t.Name, e)
	}
	return nil
}

// Close closes the tap.
func (t *Tap) Close() error { return unix.Close(t.fd) }
