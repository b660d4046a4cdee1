package bootsignal

// State is the signal device as a snapshot holds it. A snapshot is taken
// when init waits for its job, after it reported user space: what the VM
// restored from it reads is the job its own VMM sets (SetJob).
type State struct {
	Userspace bool `json:"userspace"` // init had reported user space
	Ready     bool `json:"ready"`     // init waits for its job
}

// Save returns the device's state.
func (d *Device) Save() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return State{Userspace: !d.userspace.IsZero(), Ready: !d.ready.IsZero()}
}

// Restore sets the device to s: a guest that had reported user space
// before the snapshot is in user space from the moment it resumes.
func (d *Device) Restore(s State) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if s.Userspace && d.userspace.IsZero() {
		d.userspace = now
		close(d.up)
	}
	if s.Ready {
		d.ready = now
	}
	d.jobPos = 0
}
