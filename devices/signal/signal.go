// Package signal is kiln's boot-signal device: a four-port window through
// which the guest's init tells the VMM what happens inside.
//
// Firecracker has a similar "boot timer" device; it is how a VMM learns the
// moment the guest reaches user space without parsing console output. The
// guest init, as root, gains access to the ports with ioperm(2) and writes:
//
//	offset 0: EventUserspace (1)  init is running: the boot is over
//	offset 1: an exit status      the guest command exited with this status
//
// The device records the time of each event and the status; the VMM reads
// them when the guest ends. Reads return zero.
package signal

import (
	"sync"
	"time"
)

// Offsets in the window.
const (
	EventPort  = 0
	StatusPort = 1
	WindowSize = 4
)

// Events written to EventPort.
const (
	EventUserspace = 1
)

// Device records the guest's boot and exit signals.
type Device struct {
	mu        sync.Mutex
	now       func() time.Time
	userspace time.Time
	status    int
	hasStatus bool
	onEvent   func(event byte)
	up        chan struct{} // closed at EventUserspace
}

// New returns a device; onEvent, if non-nil, is called for each event.
func New(onEvent func(event byte)) *Device {
	return &Device{now: time.Now, onEvent: onEvent, up: make(chan struct{})}
}

// Read implements bus.Device: all zeros.
func (d *Device) Read(off uint64, data []byte) {
	for i := range data {
		data[i] = 0
	}
}

// Write implements bus.Device.
func (d *Device) Write(off uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	d.mu.Lock()
	v := data[0]
	switch off {
	case EventPort:
		if v == EventUserspace && d.userspace.IsZero() {
			d.userspace = d.now()
			close(d.up)
		}
	case StatusPort:
		d.status, d.hasStatus = int(v), true
	}
	d.mu.Unlock()
	if off == EventPort && d.onEvent != nil {
		d.onEvent(v)
	}
}

// Userspace returns when the guest reported reaching user space.
func (d *Device) Userspace() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.userspace, !d.userspace.IsZero()
}

// UserspaceReached is closed when the guest reports reaching user space.
func (d *Device) UserspaceReached() <-chan struct{} { return d.up }

// ExitStatus returns the guest command's exit status, if it reported one.
func (d *Device) ExitStatus() (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status, d.hasStatus
}
