package virtio

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// Net is a virtio network device (5.1) backed by a tap. Queue 0 receives
// (host to guest), queue 1 transmits. Every frame starts with a
// virtio_net_hdr carrying checksum and segmentation offload information;
// the tap speaks the same header, so kiln moves frames between the rings
// and the tap with one readv or writev each.
type Net struct {
	tap  *Tap
	mac  net.HardwareAddr
	stop chan struct{}
	wg   sync.WaitGroup
}

// virtio-net feature bits (5.1.3).
const (
	netFCsum      = 1 << 0 // the device handles partial checksums (guest tx)
	netFGuestCsum = 1 << 1 // the driver handles partial checksums (guest rx)
	netFMAC       = 1 << 5 // config holds the MAC address
	netFGuestTSO4 = 1 << 7 // the driver takes TSO frames
	netFGuestTSO6 = 1 << 8
	netFHostTSO4  = 1 << 11 // the device takes TSO frames
	netFHostTSO6  = 1 << 12

	netQueueSize = 256
	netRxQueue   = 0
	netTxQueue   = 1
)

// NewNet returns a network device on tap with the given MAC address.
func NewNet(tap *Tap, mac net.HardwareAddr) (*Net, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("net: MAC %v is not 6 bytes", mac)
	}
	return &Net{tap: tap, mac: mac}, nil
}

// Close closes the tap.
func (n *Net) Close() error { return n.tap.Close() }

func (n *Net) Type() DeviceType        { return TypeNet }
func (n *Net) QueueMaxSizes() []uint16 { return []uint16{netQueueSize, netQueueSize} }

// Features offers the MAC address and checksum and TSO offloads both ways.
func (n *Net) Features() uint64 {
	return CommonFeatures | netFCsum | netFGuestCsum | netFMAC |
		netFGuestTSO4 | netFGuestTSO6 | netFHostTSO4 | netFHostTSO6
}

// ReadConfig reads struct virtio_net_config: the MAC address.
func (n *Net) ReadConfig(off uint64, d []byte) {
	c := make([]byte, 8)
	copy(c, n.mac)
	if off < uint64(len(c)) {
		copy(d, c[off:])
	}
}

// WriteConfig ignores writes (the MAC is read-only in VERSION_1).
func (n *Net) WriteConfig(off uint64, d []byte) {}

// Activate sets the tap's offloads to what the guest accepted and starts
// the receive and transmit goroutines.
func (n *Net) Activate(a *Activation) error {
	var off uint
	if a.Features&netFGuestCsum != 0 {
		off |= unix.TUN_F_CSUM
		if a.Features&netFGuestTSO4 != 0 {
			off |= unix.TUN_F_TSO4
		}
		if a.Features&netFGuestTSO6 != 0 {
			off |= unix.TUN_F_TSO6
		}
	}
	// A tap that refuses offloads still works: the host then sends only
	// whole, checksummed frames, which every driver takes.
	_ = n.tap.SetOffload(off)
	n.stop = make(chan struct{})
	if q := a.Queues[netTxQueue]; q.Size > 0 {
		n.run(func() { n.transmit(a, q, a.Kicks[netTxQueue]) })
	}
	if q := a.Queues[netRxQueue]; q.Size > 0 {
		n.run(func() { n.receive(a, q, a.Kicks[netRxQueue]) })
	}
	return nil
}

func (n *Net) run(f func()) {
	n.wg.Add(1)
	go func() { defer n.wg.Done(); f() }()
}

// Reset stops both goroutines.
func (n *Net) Reset() {
	if n.stop != nil {
		close(n.stop)
		n.wg.Wait()
		n.stop = nil
	}
}

// transmit writes each chain the guest sends, header and frame, to the tap.
func (n *Net) transmit(a *Activation, q *Queue, kick <-chan struct{}) {
	for {
		err := drain(q, func(c *Chain) (uint32, error) {
			if c.ReadableLen() < netHdrLen {
				return 0, fmt.Errorf("%w: transmitted frame without a header", ErrBadChain)
			}
			// A frame the tap refuses (the link is down, say) is dropped,
			// as a NIC drops what it cannot send.
			_, _ = unix.Writev(n.tap.fd, c.Readable)
			return 0, nil
		}, a.Interrupt)
		if err != nil {
			a.Fail(err)
			return
		}
		select {
		case <-kick:
		case <-n.stop:
			return
		}
	}
}

// receive takes a buffer chain from the guest, waits for a frame from the
// tap, reads it into the chain and returns the chain.
func (n *Net) receive(a *Activation, q *Queue, kick <-chan struct{}) {
	for {
		c, err := q.Pop()
		if err != nil {
			a.Fail(err)
			return
		}
		if c == nil {
			// No buffers: wait for the guest to add some.
			more, err := q.ArmNotify()
			if err != nil {
				a.Fail(err)
				return
			}
			if !more {
				select {
				case <-kick:
				case <-n.stop:
					return
				}
			}
			continue
		}
		if len(c.Writable) == 0 || len(c.Writable[0]) < netHdrLen {
			a.Fail(fmt.Errorf("%w: receive buffer without room for a header", ErrBadChain))
			return
		}
		k, ok := n.readFrame(c.Writable)
		if !ok {
			return // stopped
		}
		le.PutUint16(c.Writable[0][10:], 1) // num_buffers: one chain a frame
		q.Push(c.Head, uint32(k))
		if q.NeedInterrupt() {
			a.Interrupt()
		}
	}
}

// readFrame waits for a frame on the tap and reads it into bufs. It
// returns false when the device is stopping.
func (n *Net) readFrame(bufs [][]byte) (int, bool) {
	fds := []unix.PollFd{{Fd: int32(n.tap.fd), Events: unix.POLLIN}}
	for {
		select {
		case <-n.stop:
			return 0, false
		default:
		}
		k, err := unix.Readv(n.tap.fd, bufs)
		if err == nil && k > 0 {
			return k, true
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return 0, false // the tap is gone
		}
		// Wait for a frame, waking now and then to see if we must stop.
		unix.Poll(fds, 100)
	}
}
