package virtio

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kiln-vmm/kiln/devices"
)

// virtio-mmio registers (4.2.2 "MMIO Device Register Layout"), as offsets
// in the device's window. All are 32 bits wide; the device configuration
// space starts at RegConfig.
const (
	RegMagicValue        = 0x000
	RegVersion           = 0x004
	RegDeviceID          = 0x008
	RegVendorID          = 0x00c
	RegDeviceFeatures    = 0x010
	RegDeviceFeaturesSel = 0x014
	RegDriverFeatures    = 0x020
	RegDriverFeaturesSel = 0x024
	RegQueueSel          = 0x030
	RegQueueNumMax       = 0x034
	RegQueueNum          = 0x038
	RegQueueReady        = 0x044
	RegQueueNotify       = 0x050
	RegInterruptStatus   = 0x060
	RegInterruptACK      = 0x064
	RegStatus            = 0x070
	RegQueueDescLow      = 0x080
	RegQueueDescHigh     = 0x084
	RegQueueDriverLow    = 0x090
	RegQueueDriverHigh   = 0x094
	RegQueueDeviceLow    = 0x0a0
	RegQueueDeviceHigh   = 0x0a4
	RegSHMSel            = 0x0ac
	RegSHMLenLow         = 0x0b0
	RegSHMLenHigh        = 0x0b4
	RegSHMBaseLow        = 0x0b8
	RegSHMBaseHigh       = 0x0bc
	RegConfigGeneration  = 0x0fc
	RegConfig            = 0x100

	magic    = 0x74726976 // "virt"
	version2 = 2          // modern virtio-mmio
	vendorID = 0x4e4c494b // "KILN"
)

// Device status bits (2.1 "Device Status Field").
const (
	StatusAcknowledge      = 1
	StatusDriver           = 2
	StatusDriverOK         = 4
	StatusFeaturesOK       = 8
	StatusDeviceNeedsReset = 64
	StatusFailed           = 128
)

// Interrupt status bits.
const (
	InterruptUsedBuffer   = 1
	InterruptConfigChange = 2
)

// Transport is one virtio-mmio device window: the registers a driver uses
// to discover the device, negotiate features, place its queues and start
// it, in front of a Device. It implements bus.Device.
type Transport struct {
	mu  sync.Mutex
	dev Device
	mem Memory
	irq devices.Interrupt

	status         uint32
	devFeaturesSel uint32
	drvFeaturesSel uint32
	driverFeatures uint64
	queueSel       uint32
	queues         []*Queue
	ready          []bool
	kicks          []chan struct{}
	active         bool
	paused         bool // the device's work is stopped for a snapshot
	configGen      uint32

	isr        atomic.Uint32
	needsReset atomic.Bool // set by a device goroutine; read with status

	failMu  sync.Mutex
	failure error       // why the device needs a reset, until the next one
	onFail  func(error) // told of each failure (--trace); nil for none
}

// NewTransport puts dev behind a virtio-mmio window that raises irq.
func NewTransport(dev Device, mem Memory, irq devices.Interrupt) *Transport {
	t := &Transport{dev: dev, mem: mem, irq: irq}
	t.resetLocked()
	return t
}

// NumQueues is how many queues the device has.
func (t *Transport) NumQueues() int { return len(t.dev.QueueMaxSizes()) }

// Kick notifies queue q, as a guest write of q to QueueNotify does. The VMM
// calls it from an ioeventfd, so a notification costs no VM exit.
func (t *Transport) Kick(q int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if q >= 0 && q < len(t.kicks) {
		select {
		case t.kicks[q] <- struct{}{}:
		default: // a kick is already pending
		}
	}
}

// Read implements bus.Device.
func (t *Transport) Read(off uint64, data []byte) {
	for i := range data {
		data[i] = 0
	}
	if off >= RegConfig {
		t.dev.ReadConfig(off-RegConfig, data)
		return
	}
	if len(data) != 4 || off%4 != 0 {
		return // registers are 32-bit, aligned
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	le.PutUint32(data, t.readReg(off))
}

func (t *Transport) readReg(off uint64) uint32 {
	switch off {
	case RegMagicValue:
		return magic
	case RegVersion:
		return version2
	case RegDeviceID:
		return uint32(t.dev.Type())
	case RegVendorID:
		return vendorID
	case RegDeviceFeatures:
		if t.devFeaturesSel > 1 {
			return 0
		}
		return uint32(t.dev.Features() >> (32 * t.devFeaturesSel))
	case RegQueueNumMax:
		if q := t.selected(); q >= 0 {
			return uint32(t.dev.QueueMaxSizes()[q])
		}
	case RegQueueReady:
		if q := t.selected(); q >= 0 && t.ready[q] {
			return 1
		}
	case RegInterruptStatus:
		return t.isr.Load()
	case RegStatus:
		if t.needsReset.Load() {
			return t.status | StatusDeviceNeedsReset
		}
		return t.status
	case RegSHMLenLow, RegSHMLenHigh:
		return 0xffffffff // no shared memory regions
	case RegConfigGeneration:
		return t.configGen
	}
	return 0
}

// selected returns QueueSel if it names a queue, else -1.
func (t *Transport) selected() int {
	if int(t.queueSel) < len(t.queues) {
		return int(t.queueSel)
	}
	return -1
}

// Write implements bus.Device.
func (t *Transport) Write(off uint64, data []byte) {
	if off >= RegConfig {
		t.dev.WriteConfig(off-RegConfig, data)
		return
	}
	if len(data) != 4 || off%4 != 0 {
		return
	}
	v := le.Uint32(data)
	if off == RegQueueNotify {
		t.Kick(int(v))
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.selected()
	// Queue registers may only change while the queue is not ready.
	setup := q >= 0 && !t.ready[q] && !t.active
	switch off {
	case RegDeviceFeaturesSel:
		t.devFeaturesSel = v
	case RegDriverFeaturesSel:
		t.drvFeaturesSel = v
	case RegDriverFeatures:
		if t.drvFeaturesSel <= 1 && t.status&StatusFeaturesOK == 0 {
			shift := 32 * t.drvFeaturesSel
			t.driverFeatures = t.driverFeatures&^(0xffffffff<<shift) | uint64(v)<<shift
		}
	case RegQueueSel:
		t.queueSel = v
	case RegQueueNum:
		if setup {
			t.queues[q].Size = uint16(min(v, MaxQueueSize+1))
		}
	case RegQueueReady:
		if q >= 0 && !t.active {
			t.ready[q] = v == 1
		}
	case RegQueueDescLow, RegQueueDescHigh:
		if setup {
			setHalf(&t.queues[q].DescAddr, off == RegQueueDescHigh, v)
		}
	case RegQueueDriverLow, RegQueueDriverHigh:
		if setup {
			setHalf(&t.queues[q].DriverAddr, off == RegQueueDriverHigh, v)
		}
	case RegQueueDeviceLow, RegQueueDeviceHigh:
		if setup {
			setHalf(&t.queues[q].DeviceAddr, off == RegQueueDeviceHigh, v)
		}
	case RegInterruptACK:
		t.isr.And(^v)
	case RegStatus:
		t.setStatus(v)
	}
}

func setHalf(p *uint64, high bool, v uint32) {
	if high {
		*p = *p&0xffffffff | uint64(v)<<32
	} else {
		*p = *p&^0xffffffff | uint64(v)
	}
}

// setStatus runs the device status state machine (3.1 "Device
// Initialization"): 0 resets; FEATURES_OK is accepted only for a subset of
// the offered features that includes VERSION_1; DRIVER_OK starts the device.
func (t *Transport) setStatus(v uint32) {
	if v == 0 {
		t.resetLocked()
		return
	}
	if v&^t.status&StatusFeaturesOK != 0 {
		offered := t.dev.Features()
		if t.driverFeatures&^offered != 0 || t.driverFeatures&FeatureVersion1 == 0 {
			v &^= StatusFeaturesOK // refused: the driver sees it unset
		}
	}
	// DRIVER_OK starts the device once. A driver that clears it and sets
	// it again (2.1.2 forbids clearing status bits) must not start a
	// second set of device goroutines on the same queues.
	start := v&^t.status&StatusDriverOK != 0 && !t.active
	t.status = v &^ StatusDeviceNeedsReset
	if start && t.status&StatusFeaturesOK != 0 && t.status&StatusFailed == 0 {
		if err := t.startLocked(true); err != nil {
			t.fail(err)
		}
	}
}

// startLocked hands the ready queues to the device: fresh ones from the
// start of their rings when the driver sets DRIVER_OK, or, restoring a
// snapshot, where the device had got to.
func (t *Transport) startLocked(fresh bool) error {
	a := &Activation{
		Features:  t.driverFeatures,
		Interrupt: t.interruptUsed,
		Fail:      t.fail,
	}
	for i, q := range t.queues {
		if !t.ready[i] {
			// A queue the driver did not set up stays unused, and has no
			// kicks; the device sees it with Size 0.
			a.Queues = append(a.Queues, &Queue{})
			a.Kicks = append(a.Kicks, nil)
			continue
		}
		if max := t.dev.QueueMaxSizes()[i]; q.Size > max {
			return fmt.Errorf("queue %d: size %d is over the device's %d", i, q.Size, max)
		}
		q.EventIdx = t.driverFeatures&FeatureEventIdx != 0
		if fresh {
			if err := q.Activate(t.mem); err != nil {
				return fmt.Errorf("queue %d: %w", i, err)
			}
		}
		a.Queues = append(a.Queues, q)
		a.Kicks = append(a.Kicks, t.kicks[i])
	}
	if err := t.dev.Activate(a); err != nil {
		return err
	}
	t.active = true
	return nil
}

func (t *Transport) interruptUsed() {
	t.isr.Or(InterruptUsedBuffer)
	_ = t.irq.Trigger()
}

// fail sets DEVICE_NEEDS_RESET and tells the driver with a
// configuration-change interrupt (2.1.2), keeping err as the reason.
// Device goroutines call it, so it does not take t.mu: Reset, under that
// lock, waits for those goroutines.
func (t *Transport) fail(err error) {
	t.failMu.Lock()
	if t.failure == nil {
		t.failure = err
	}
	hook := t.onFail
	t.failMu.Unlock()
	t.needsReset.Store(true)
	t.isr.Or(InterruptConfigChange)
	_ = t.irq.Trigger()
	if hook != nil {
		hook(err)
	}
}

// Failure returns why the device asked for a reset (DEVICE_NEEDS_RESET),
// or nil if it has not since the driver last reset it.
func (t *Transport) Failure() error {
	t.failMu.Lock()
	defer t.failMu.Unlock()
	return t.failure
}

// OnFailure makes f hear of every failure as it happens, from whichever
// goroutine found it. Set it before the guest runs.
func (t *Transport) OnFailure(f func(error)) {
	t.failMu.Lock()
	defer t.failMu.Unlock()
	t.onFail = f
}

// Reset resets the device as a driver's write of 0 to Status does: its
// goroutines stop and every register returns to its initial value. The
// VMM calls it when the VM ends.
func (t *Transport) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resetLocked()
}

// resetLocked returns the transport and the device to their initial state.
func (t *Transport) resetLocked() {
	if t.active {
		// Paused too: a Pauser kept what a reset ends (a 9P session), and
		// a device that paused by a reset takes a second one.
		t.dev.Reset()
	}
	t.paused = false
	n := len(t.dev.QueueMaxSizes())
	t.status, t.devFeaturesSel, t.drvFeaturesSel, t.driverFeatures, t.queueSel = 0, 0, 0, 0, 0
	t.queues = make([]*Queue, n)
	t.ready = make([]bool, n)
	t.kicks = make([]chan struct{}, n)
	for i := range t.queues {
		t.queues[i] = &Queue{Size: t.dev.QueueMaxSizes()[i]}
		t.kicks[i] = make(chan struct{}, 1)
	}
	t.active = false
	t.isr.Store(0)
	t.needsReset.Store(false)
	t.failMu.Lock()
	t.failure = nil
	t.failMu.Unlock()
}

// Status returns the device status register, for tests and traces.
func (t *Transport) Status() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.readReg(RegStatus)
}
