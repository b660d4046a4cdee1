package virtio

import "fmt"

// DeviceType is a virtio device ID (5 "Device Types").
type DeviceType uint32

// The device types kiln implements.
const (
	TypeNet   DeviceType = 1
	TypeBlock DeviceType = 2
	TypeRNG   DeviceType = 4
	TypeP9    DeviceType = 9
	TypeVsock DeviceType = 19
)

func (t DeviceType) String() string {
	switch t {
	case TypeNet:
		return "net"
	case TypeBlock:
		return "block"
	case TypeRNG:
		return "rng"
	case TypeP9:
		return "9p"
	case TypeVsock:
		return "vsock"
	}
	return fmt.Sprintf("virtio-type-%d", uint32(t))
}

// Feature bits common to all devices (6 "Reserved Feature Bits").
const (
	FeatureIndirectDesc = 1 << 28 // VIRTIO_RING_F_INDIRECT_DESC
	FeatureEventIdx     = 1 << 29 // VIRTIO_RING_F_EVENT_IDX
	FeatureVersion1     = 1 << 32 // VIRTIO_F_VERSION_1: a modern device
)

// CommonFeatures are offered by every kiln device.
const CommonFeatures = FeatureVersion1 | FeatureIndirectDesc | FeatureEventIdx

// Device is the device-type half of a virtio device; the transport does
// the rest. A device sees only its configuration space and, once the
// driver is done setting up, its queues.
type Device interface {
	Type() DeviceType
	// Features are the feature bits offered, CommonFeatures included.
	Features() uint64
	// QueueMaxSizes gives each queue's largest size.
	QueueMaxSizes() []uint16
	// ReadConfig and WriteConfig access the device configuration space.
	ReadConfig(offset uint64, data []byte)
	WriteConfig(offset uint64, data []byte)
	// Activate starts the device's work on its queues: the driver has set
	// DRIVER_OK. It must return promptly and do the work in goroutines.
	Activate(a *Activation) error
	// Reset stops that work and returns the device to its initial state.
	// When it returns, no goroutine of the device touches guest memory.
	Reset()
}

// Activation is what a device works with once the driver is ready.
type Activation struct {
	Queues   []*Queue
	Kicks    []<-chan struct{} // Kicks[i] fires when the driver notifies queue i
	Features uint64            // the negotiated features
	// Interrupt tells the driver that used buffers are waiting.
	Interrupt func()
	// Fail reports a malformed request: the device needs a reset.
	Fail func(error)
}

// readConfig reads a device's configuration space cfg at off into d, as
// the transport passes a driver's read on: past the end reads zeros.
func readConfig(cfg []byte, off uint64, d []byte) {
	clear(d)
	if off < uint64(len(cfg)) {
		copy(d, cfg[off:])
	}
}
