package virtio

import (
	"encoding/json"
	"fmt"
	"net"
)

// Net is a virtio network device (5.1). Queue 0 receives (host to guest),
// queue 1 transmits. Every frame starts with a virtio_net_hdr carrying
// checksum and segmentation offload information; the back end (a tap,
// devices/tap) speaks the same header, so kiln moves frames between the
// rings and the back end with one readv or writev each.
//
// A snapshot holds the device's rings (the transport's state) and the
// features it offered; it does not hold its back end or its MAC address.
// A VM restored from it gets a fresh tap and the MAC address given at
// restore, so every clone of one snapshot has a network of its own. The
// guest's driver read the MAC address from the configuration space when
// it probed the device, before the snapshot, and does not read it again:
// a clone's guest takes its address from its job (contract.Interface),
// and the device serves the new one to a driver that probes it again.
type Net struct {
	backend NetBackend
	mac     net.HardwareAddr
	workers Workers
}

// NetBackend is where a network device's frames go and come from: a tap
// (devices/tap), or in tests one end of a socket pair. Every frame carries
// a NetHeaderLen-byte virtio_net_hdr_v1 in front.
type NetBackend interface {
	// WriteFrame writes one frame gathered from bufs.
	WriteFrame(bufs [][]byte) error
	// ReadFrame waits for one frame and scatters it into bufs; it returns
	// an error once stop is closed or the back end is gone.
	ReadFrame(bufs [][]byte, stop <-chan struct{}) (int, error)
	// SetOffload says which offloads the guest takes on received frames.
	SetOffload(csum, tso4, tso6 bool) error
	Close() error
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

	// NetHeaderLen is struct virtio_net_hdr_v1, num_buffers included.
	NetHeaderLen = 12

	netQueueSize = 256
	netRxQueue   = 0
	netTxQueue   = 1

	// netMaxFrame bounds a transmitted frame, header included: the
	// largest a guest with TSO sends is 64 KiB of segment plus an
	// Ethernet header with a VLAN tag. A longer chain is dropped without
	// a system call, as a NIC drops a frame it cannot send.
	netMaxFrame = NetHeaderLen + 65536 + 18
)

// NewNet returns a network device on backend with the given MAC address.
func NewNet(backend NetBackend, mac net.HardwareAddr) (*Net, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("net: MAC %v is not 6 bytes", mac)
	}
	return &Net{backend: backend, mac: mac}, nil
}

// Close closes the back end.
func (n *Net) Close() error { return n.backend.Close() }

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
	readConfig(c, off, d)
}

// WriteConfig ignores writes (the MAC is read-only in VERSION_1).
func (n *Net) WriteConfig(off uint64, d []byte) {}

// Activate sets the back end's offloads to what the guest accepted and
// starts the receive and transmit goroutines.
func (n *Net) Activate(a *Activation) error {
	// A tap that refuses offloads still works: the host then sends only
	// whole, checksummed frames, which every driver takes.
	_ = n.backend.SetOffload(a.Features&netFGuestCsum != 0,
		a.Features&netFGuestTSO4 != 0, a.Features&netFGuestTSO6 != 0)
	n.workers.Start(a, netTxQueue, n.transmit)
	if q := a.Queues[netRxQueue]; q.Size > 0 {
		n.workers.Go(func(stop <-chan struct{}) { n.receive(a, q, a.Kicks[netRxQueue], stop) })
	}
	return nil
}

// Reset stops both directions.
func (n *Net) Reset() { n.workers.Stop() }

// netState is a network device as a snapshot holds it: the features it
// offered, which the driver's negotiated ones are a subset of, and, for
// the record, the MAC address it had.
type netState struct {
	Features uint64 `json:"features"`
	MAC      string `json:"mac"`
}

// SaveState implements Snapshotter. The transport has stopped both
// directions: a receive buffer the device had taken while it waited for
// a frame is back in the available ring's view (Queue.Unpop).
func (n *Net) SaveState() (json.RawMessage, error) {
	return json.Marshal(netState{Features: n.Features(), MAC: n.mac.String()})
}

// RestoreState implements Snapshotter: the device must offer every
// feature the snapshot's did, since the guest's driver may use any of
// them. The MAC address and the back end are the new device's own.
func (n *Net) RestoreState(data json.RawMessage) error {
	var s netState
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("network device state: %w", err)
	}
	if missing := s.Features &^ n.Features(); missing != 0 {
		return fmt.Errorf("the snapshot's network device offered features %#x that this one does not", missing)
	}
	return nil
}

// transmit writes one chain the guest sends, header and frame, to the
// back end.
func (n *Net) transmit(c *Chain) (uint32, error) {
	if c.ReadableLen() < NetHeaderLen {
		return 0, fmt.Errorf("%w: transmitted frame without a header", ErrBadChain)
	}
	if c.ReadableLen() > netMaxFrame {
		return 0, nil
	}
	// A frame the back end refuses (the link is down, say) is dropped,
	// as a NIC drops what it cannot send.
	_ = n.backend.WriteFrame(c.Readable)
	return 0, nil
}

// receive takes a buffer chain from the guest, waits for a frame from the
// back end, reads it into the chain and returns the chain.
func (n *Net) receive(a *Activation, q *Queue, kick <-chan struct{}, stop <-chan struct{}) {
	for {
		c, err := next(q, kick, stop)
		if err == nil && c != nil && (len(c.Writable) == 0 || len(c.Writable[0]) < NetHeaderLen) {
			err = fmt.Errorf("%w: receive buffer without room for a header", ErrBadChain)
		}
		if err != nil {
			a.Fail(err)
			return
		}
		if c == nil {
			return // stopped
		}
		k, err := n.backend.ReadFrame(c.Writable, stop)
		if err != nil {
			// Stopped, or the back end is gone: the chain goes back to
			// the available ring's view of it when the device restarts.
			q.Unpop()
			return
		}
		le.PutUint16(c.Writable[0][10:], 1) // num_buffers: one chain a frame
		give(q, a, c.Head, uint32(k))
	}
}
