// Package bootsignal is kiln's boot-signal device: a window of eight I/O ports
// through which the guest's init and kiln talk without a console, a disk
// or a network.
//
// Firecracker has a similar "boot timer" device; it is how a VMM learns
// the moment the guest reaches user space without parsing console output.
// kiln's device also carries the other direction: init asks for its job
// and reads it here, four bytes per read. The protocol, offsets and event values are defined in
// guest/contract, which the guest's init shares:
//
//	offset 0, write: an event   EventUserspace, EventReady, EventRunning, EventAppReady
//	offset 1, write: a status   the guest command exited with it
//	offset 4, read:  the job    from its first byte after each EventReady (or EventAppReady)
//
// The device records the time of each event and the status; the VMM reads
// them when the guest ends. Other reads return zero.
package bootsignal

import (
	"sync"
	"time"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Device records the guest's signals and serves its job.
type Device struct {
	mu        sync.Mutex
	now       func() time.Time
	userspace time.Time
	ready     time.Time
	running   time.Time
	status    int
	hasStatus bool
	job       []byte // header and JSON (contract.Job.Marshal)
	jobPos    int    // the next byte a read of the job returns
	onEvent   func(contract.Event)
	up        chan struct{} // closed at EventUserspace
	run       chan struct{} // closed at EventRunning
}

// New returns a device; onEvent, if non-nil, is called for each event,
// on the vCPU thread that wrote it, before the write returns.
func New(onEvent func(contract.Event)) *Device {
	return &Device{now: time.Now, onEvent: onEvent, up: make(chan struct{}), run: make(chan struct{})}
}

// SetJob sets what init reads when it asks for its job: the bytes of a
// marshaled contract.Job.
func (d *Device) SetJob(job []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.job, d.jobPos = job, 0
}

// Read implements bus.Device: the next byte of the job at JobOffset, zero
// elsewhere.
func (d *Device) Read(off uint64, data []byte) {
	clear(data)
	if off != contract.JobOffset {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range data {
		if d.jobPos < len(d.job) {
			data[i] = d.job[d.jobPos]
			d.jobPos++
		}
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
	case contract.EventOffset:
		switch contract.Event(v) {
		case contract.EventUserspace:
			if d.userspace.IsZero() {
				d.userspace = d.now()
				close(d.up)
			}
		case contract.EventReady, contract.EventAppReady:
			d.ready = d.now()
			d.jobPos = 0
		case contract.EventRunning:
			if d.running.IsZero() {
				d.running = d.now()
				close(d.run)
			}
		}
	case contract.StatusOffset:
		d.status, d.hasStatus = int(v), true
	}
	d.mu.Unlock()
	if off == contract.EventOffset && d.onEvent != nil {
		d.onEvent(contract.Event(v))
	}
}

// Userspace returns when the guest reported reaching user space.
func (d *Device) Userspace() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.userspace, !d.userspace.IsZero()
}

// Ready returns when init last said it waits for its job.
func (d *Device) Ready() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready, !d.ready.IsZero()
}

// Running returns when init started the job's command.
func (d *Device) Running() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running, !d.running.IsZero()
}

// CommandStarted is closed when init reports it starts the job's command.
func (d *Device) CommandStarted() <-chan struct{} { return d.run }

// UserspaceReached is closed when the guest reports reaching user space.
func (d *Device) UserspaceReached() <-chan struct{} { return d.up }

// ExitStatus returns the guest command's exit status, if it reported one.
func (d *Device) ExitStatus() (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status, d.hasStatus
}
