// Package tap is the host side of a virtio network device: a Linux tap,
// a virtual Ethernet interface whose frames a program reads and writes
// through a file descriptor. Frames the guest sends are written to it;
// frames the host routes to it are read and handed to the guest.
//
// kiln opens the tap with IFF_VNET_HDR: each frame carries the same
// virtio_net_hdr_v1 in front that the guest's driver uses, so checksum and
// segmentation offloads pass between the guest and the host kernel without
// kiln touching the packets.
//
// There are two ways to get one. Open attaches to a tap the host's
// administrator made (kiln run --net tap=NAME; docs/virtio.md shows how),
// which outlives kiln. Create makes a new one that lives as long as its
// file descriptor, in the network namespace of the calling thread: that
// is how vmm/hostnet gives a container's VM a tap inside the engine's
// namespace, and why nothing is left behind when the VMM dies.
package tap

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Tap is an open tap device.
type Tap struct {
	Name string
	fd   int
}

// ErrNoTap says the tap device does not exist or cannot be opened.
var ErrNoTap = errors.New("tap device unavailable")

// HeaderLen is struct virtio_net_hdr_v1 (with num_buffers), the header
// both the guest driver (VERSION_1) and the tap exchange.
const HeaderLen = 12

// ErrStopped is returned by ReadFrame when asked to stop.
var ErrStopped = errors.New("tap: stopped")

// ifreq is struct ifreq as TUNSETIFF reads it: a name and flags.
type ifreq struct {
	Name  [unix.IFNAMSIZ]byte
	Flags uint16
	_     [22]byte
}

// Open opens the existing tap device name.
func Open(name string) (*Tap, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/sys/class/net/" + name + "/tun_flags"); err != nil {
		return nil, fmt.Errorf("%w: tap %s does not exist (create it with: ip tuntap add %s mode tap; ip link set %s up)", ErrNoTap, name, name, name)
	}
	t, err := attach(name, 0)
	if err != nil {
		return nil, fmt.Errorf("%w (is it a tap, not a tun? does another process hold it?)", err)
	}
	return t, nil
}

// Create makes a new tap called name in the calling thread's network
// namespace and opens it. It is not persistent: the kernel removes it,
// with its addresses, qdiscs and filters, when its file descriptor is
// closed, by Close or by the death of the process. The descriptor works
// from any thread and any namespace. A caller that wants the tap in
// another namespace calls Create on a thread locked into it
// (vmm/hostnet does). Create fails if a device called name exists.
func Create(name string) (*Tap, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return attach(name, unix.IFF_TUN_EXCL)
}

func checkName(name string) error {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return fmt.Errorf("%w: bad tap name %q", ErrNoTap, name)
	}
	return nil
}

// attach opens /dev/net/tun and binds the file to the tap name with
// TUNSETIFF, creating it if it does not exist (or failing, with
// IFF_TUN_EXCL in extra, if it does): frames without packet information
// (IFF_NO_PI), with a virtio_net_hdr_v1 of HeaderLen bytes in front
// (IFF_VNET_HDR, TUNSETVNETHDRSZ).
func attach(name string, extra uint16) (*Tap, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open /dev/net/tun: %v", ErrNoTap, err)
	}
	var req ifreq
	copy(req.Name[:], name)
	req.Flags = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR | extra
	if e := ioctlPtr(fd, unix.TUNSETIFF, &req); e != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: TUNSETIFF %s: %v", ErrNoTap, name, e)
	}
	hdr := int32(HeaderLen)
	if e := ioctlPtr(fd, unix.TUNSETVNETHDRSZ, &hdr); e != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: TUNSETVNETHDRSZ %s: %v", ErrNoTap, name, e)
	}
	return &Tap{Name: name, fd: fd}, nil
}

// FromFD wraps an fd that is already open: a tap opened by another
// process, or in tests one end of a SOCK_SEQPACKET socket pair, which
// keeps frame boundaries as a tap does.
func FromFD(name string, fd int) *Tap { return &Tap{Name: name, fd: fd} }

// SetOffload tells the tap which offloads the guest accepts on received
// frames: partial checksums, and TCP segmentation for IPv4 and IPv6. The
// host may then hand over large and partially checksummed frames.
func (t *Tap) SetOffload(csum, tso4, tso6 bool) error {
	var flags uint
	if csum {
		flags |= unix.TUN_F_CSUM
		if tso4 {
			flags |= unix.TUN_F_TSO4
		}
		if tso6 {
			flags |= unix.TUN_F_TSO6
		}
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(t.fd), unix.TUNSETOFFLOAD, uintptr(flags)); e != 0 {
		return fmt.Errorf("TUNSETOFFLOAD %s: %v", t.Name, e)
	}
	return nil
}

// WriteFrame writes one frame, header first, gathered from bufs.
func (t *Tap) WriteFrame(bufs [][]byte) error {
	_, err := unix.Writev(t.fd, bufs)
	return err
}

// ReadFrame waits for a frame and reads it into bufs, header first. It
// returns ErrStopped once stop is closed, and an error if the tap is gone.
func (t *Tap) ReadFrame(bufs [][]byte, stop <-chan struct{}) (int, error) {
	fds := []unix.PollFd{{Fd: int32(t.fd), Events: unix.POLLIN}}
	for {
		select {
		case <-stop:
			return 0, ErrStopped
		default:
		}
		k, err := unix.Readv(t.fd, bufs)
		if err == nil && k > 0 {
			return k, nil
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return 0, fmt.Errorf("read tap %s: %w", t.Name, err)
		}
		// Wait for a frame, waking now and then to see if we must stop.
		unix.Poll(fds, 100)
	}
}

// Close closes the tap.
func (t *Tap) Close() error { return unix.Close(t.fd) }
