package machine

import (
	"slices"
	"sync"
	"time"
)

// DeviceFailure is a device asking the guest's driver for a reset
// (virtio's DEVICE_NEEDS_RESET) because the guest gave it something it
// cannot take: a malformed descriptor chain, a queue outside RAM.
type DeviceFailure struct {
	Device string // "virtio-block"
	Where  string // its register window, as --stats names it: "mmio 0xd0000000-0xd0000fff"
	At     time.Time
	Reason error
}

// maxFailuresPerDevice bounds the failures a machine keeps for each
// device: the first ones, and then the latest in place of the one before,
// so that a guest that breaks a device in a loop cannot grow kiln's
// memory, every device that failed shows however often another one did,
// and so does why each one failed last. (Devices are few: one an
// interrupt line, layout.FirstVirtioIRQ to LastVirtioIRQ.)
const maxFailuresPerDevice = 4

// failureLog is the failures a machine keeps, by device.
type failureLog struct {
	mu       sync.Mutex
	byDevice map[string][]DeviceFailure // by Where
	count    int                        // how many in all
}

// add records f.
func (l *failureLog) add(f DeviceFailure) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byDevice == nil {
		l.byDevice = map[string][]DeviceFailure{}
	}
	l.count++
	fs := l.byDevice[f.Where]
	if len(fs) < maxFailuresPerDevice {
		l.byDevice[f.Where] = append(fs, f)
	} else {
		fs[len(fs)-1] = f
	}
}

// list returns the failures kept, in the order they happened, and how
// many there were in all.
func (l *failureLog) list() ([]DeviceFailure, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []DeviceFailure
	for _, fs := range l.byDevice {
		all = append(all, fs...)
	}
	slices.SortStableFunc(all, func(a, b DeviceFailure) int { return a.At.Compare(b.At) })
	return all, l.count
}

// deviceFailed records that the device at where asked for a reset.
func (m *Machine) deviceFailed(device, where string, err error) {
	f := DeviceFailure{Device: device, Where: where, At: time.Now(), Reason: err}
	m.failures.add(f)
	m.observe.deviceFailed(f)
}

// Failures returns the device failures kept (at most
// maxFailuresPerDevice for each device) and how many there were in all.
func (m *Machine) Failures() ([]DeviceFailure, int) { return m.failures.list() }
