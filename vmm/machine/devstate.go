package machine

import (
	"errors"
	"fmt"

	"github.com/kiln-vmm/kiln/devices/bootsignal"
	"github.com/kiln-vmm/kiln/devices/i8042"
	"github.com/kiln-vmm/kiln/devices/serial"
	"github.com/kiln-vmm/kiln/devices/virtio"
)

// The device manager's part of pausing and of snapshots: it pauses and
// resumes the devices it holds, and collects and hands back their states.
// Each device saves and restores itself (serial.State, virtio's
// TransportState, ...); the device manager only knows which it has.

// DeviceStates is every device of a machine as a snapshot holds it: the
// PC devices on the port bus, and each virtio device with where it was.
type DeviceStates struct {
	Serial serial.State     `json:"serial"`
	I8042  i8042.State      `json:"i8042"`
	Signal bootsignal.State `json:"signal"`
	Virtio []VirtioState    `json:"virtio"`
}

// VirtioState is one virtio-mmio device: where it was, and its state.
type VirtioState struct {
	Name  string                `json:"name"`
	Base  uint64                `json:"base"`
	IRQ   uint32                `json:"irq"`
	State virtio.TransportState `json:"state"`
}

// pause stops the virtio devices' work: when it returns, no device
// goroutine touches guest memory. (The PC devices work only when a vCPU
// accesses them, and the vCPUs are stopped first.)
func (d *deviceManager) pause() {
	for _, v := range d.virtio {
		v.transport.Pause()
	}
}

// resume starts the virtio devices again where they were. A device that
// cannot start again asks the guest for a reset; resume says which.
func (d *deviceManager) resume() error {
	var errs []error
	for _, v := range d.virtio {
		if err := v.transport.Resume(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// save returns every device's state. The devices are paused.
func (d *deviceManager) save() (DeviceStates, error) {
	s := DeviceStates{Serial: d.serial.Save(), I8042: d.i8042.Save(), Signal: d.signal.Save()}
	for _, v := range d.virtio {
		ts, err := v.transport.Save()
		if err != nil {
			return s, fmt.Errorf("%w: %w", ErrSnapshot, err)
		}
		s.Virtio = append(s.Virtio, VirtioState{Name: v.name, Base: v.base, IRQ: v.irq, State: ts})
	}
	return s, nil
}

// restore sets every device to s, first checking that each virtio device
// is where the snapshot's was: the guest's drivers know them by their
// windows and interrupt lines. A virtio device the driver had started
// starts again where it was.
func (d *deviceManager) restore(s DeviceStates) error {
	if len(d.virtio) != len(s.Virtio) {
		return fmt.Errorf("%w: %d virtio devices, the snapshot has %d", ErrSnapshot, len(d.virtio), len(s.Virtio))
	}
	for i, v := range d.virtio {
		vs := s.Virtio[i]
		if v.name != vs.Name || v.base != vs.Base || v.irq != vs.IRQ {
			return fmt.Errorf("%w: device %d is %s at %#x IRQ %d, the snapshot's is %s at %#x IRQ %d",
				ErrSnapshot, i, v.name, v.base, v.irq, vs.Name, vs.Base, vs.IRQ)
		}
	}
	if err := d.serial.Restore(s.Serial); err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	d.i8042.Restore(s.I8042)
	d.signal.Restore(s.Signal)
	for i, v := range d.virtio {
		if err := v.transport.Restore(s.Virtio[i].State); err != nil {
			return fmt.Errorf("%w: %w", ErrSnapshot, err)
		}
	}
	return nil
}
