package virtio

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Snapshotter is a device whose state a snapshot can hold. A device that
// is not one (a network device: its tap, and the guest's addresses, would
// be shared by every clone) makes kiln refuse the snapshot.
type Snapshotter interface {
	// SaveState returns the device type's own state, as JSON. The
	// transport has paused the device (Pause).
	SaveState() (json.RawMessage, error)
	// RestoreState takes it back, before the transport activates the
	// device again. An error says the host side no longer matches (a
	// disk that changed size).
	RestoreState(json.RawMessage) error
}

// Pauser is a device whose Reset would lose more than its goroutines (a
// 9P device's session): Pause stops its work and keeps the rest, so that
// SaveState still sees it, and the next Activate (Transport.Resume) goes
// on with it.
type Pauser interface {
	Pause()
}

// ErrNotSnapshottable says a device cannot be part of a snapshot.
var ErrNotSnapshottable = errors.New("cannot be snapshotted")

// TransportState is a virtio-mmio device as a snapshot holds it: the
// transport's registers and queues, and the device type's own state.
type TransportState struct {
	Type           DeviceType      `json:"type"`
	Status         uint32          `json:"status"`
	DevFeaturesSel uint32          `json:"device_features_sel"`
	DrvFeaturesSel uint32          `json:"driver_features_sel"`
	DriverFeatures uint64          `json:"driver_features"`
	QueueSel       uint32          `json:"queue_sel"`
	Queues         []QueueState    `json:"queues"`
	Active         bool            `json:"active"`
	ConfigGen      uint32          `json:"config_generation"`
	ISR            uint32          `json:"interrupt_status"`
	Failure        string          `json:"failure,omitempty"` // set: DEVICE_NEEDS_RESET
	Device         json.RawMessage `json:"device,omitempty"`
}

// Pause stops the device's work, for a snapshot or while the VM is
// paused: when it returns, no goroutine of the device touches guest
// memory, and the transport's registers and queues stay as they are. The
// device's own work is stopped with its Pause if it is a Pauser, else
// with its Reset. Resume, or Restore in another VM, starts it again where
// it was.
func (t *Transport) Pause() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active && !t.paused {
		if p, ok := t.dev.(Pauser); ok {
			p.Pause()
		} else {
			t.dev.Reset()
		}
	}
	t.paused = true
}

// Resume starts the device's work again after Pause, where it stopped:
// the driver sees nothing of the pause. A device that had asked for a
// reset stays stopped until the driver resets it.
func (t *Transport) Resume() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.paused {
		return nil
	}
	t.paused = false
	if !t.active || t.needsReset.Load() {
		return nil
	}
	t.active = false // startLocked sets it again
	if err := t.startLocked(false); err != nil {
		err = fmt.Errorf("virtio-%v: resume: %w", t.dev.Type(), err)
		t.fail(err)
		return err
	}
	return nil
}

// Paused reports whether the device's work is stopped by Pause.
func (t *Transport) Paused() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.paused
}

// Save returns the transport's state. Call it after Pause.
func (t *Transport) Save() (TransportState, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sn, ok := t.dev.(Snapshotter)
	if !ok {
		return TransportState{}, fmt.Errorf("virtio-%v: %w", t.dev.Type(), ErrNotSnapshottable)
	}
	dev, err := sn.SaveState()
	if err != nil {
		return TransportState{}, fmt.Errorf("virtio-%v: %w", t.dev.Type(), err)
	}
	s := TransportState{
		Type: t.dev.Type(), Status: t.status, DevFeaturesSel: t.devFeaturesSel,
		DrvFeaturesSel: t.drvFeaturesSel, DriverFeatures: t.driverFeatures, QueueSel: t.queueSel,
		Active: t.active, ConfigGen: t.configGen, ISR: t.isr.Load(), Device: dev,
	}
	for i, q := range t.queues {
		s.Queues = append(s.Queues, q.state(t.ready[i]))
	}
	if f := t.Failure(); f != nil {
		s.Failure = f.Error()
	}
	return s, nil
}

// Restore sets the transport to s, checking it against the device, and
// starts the device again if the driver had started it.
func (t *Transport) Restore(s TransportState) error {
	if s.Type != t.dev.Type() {
		return fmt.Errorf("virtio-%v: the snapshot has a %v device here", t.dev.Type(), s.Type)
	}
	if len(s.Queues) != len(t.dev.QueueMaxSizes()) {
		return fmt.Errorf("virtio-%v: the snapshot has %d queues, the device %d", t.dev.Type(), len(s.Queues), len(t.dev.QueueMaxSizes()))
	}
	if sn, ok := t.dev.(Snapshotter); !ok {
		return fmt.Errorf("virtio-%v: %w", t.dev.Type(), ErrNotSnapshottable)
	} else if err := sn.RestoreState(s.Device); err != nil {
		return fmt.Errorf("virtio-%v: %w", t.dev.Type(), err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resetLocked()
	t.status, t.devFeaturesSel, t.drvFeaturesSel = s.Status, s.DevFeaturesSel, s.DrvFeaturesSel
	t.driverFeatures, t.queueSel, t.configGen = s.DriverFeatures, s.QueueSel, s.ConfigGen
	for i, qs := range s.Queues {
		if max := t.dev.QueueMaxSizes()[i]; qs.Size > max {
			return fmt.Errorf("virtio-%v: queue %d of size %d, at most %d", t.dev.Type(), i, qs.Size, max)
		}
		if err := t.queues[i].restore(t.mem, qs); err != nil {
			return fmt.Errorf("virtio-%v: queue %d: %w", t.dev.Type(), i, err)
		}
		t.ready[i] = qs.Ready
	}
	t.isr.Store(s.ISR)
	if s.Failure != "" {
		t.needsReset.Store(true)
		t.failMu.Lock()
		t.failure = errors.New(s.Failure)
		t.failMu.Unlock()
		return nil // the driver must reset it: nothing to start
	}
	if s.Active {
		if err := t.startLocked(false); err != nil {
			return fmt.Errorf("virtio-%v: %w", t.dev.Type(), err)
		}
	}
	return nil
}
