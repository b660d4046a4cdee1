package signal

import "fmt"

// RegisterName names the port at offset off in the device's window.
func RegisterName(off uint64) string {
	switch off {
	case EventPort:
		return "event"
	case StatusPort:
		return "status"
	}
	return fmt.Sprintf("offset %d", off)
}

// EventName says what an event written to EventPort means.
func EventName(event byte) string {
	if event == EventUserspace {
		return "guest user space started"
	}
	return "unknown event"
}

// Describe says in words what an access at off did, for traces:
// "event <- 1 (guest user space started)".
func (d *Device) Describe(off uint64, write bool, data []byte) string {
	name := RegisterName(off)
	if len(data) == 0 {
		return name
	}
	v := data[0]
	switch {
	case !write:
		return fmt.Sprintf("%s -> %d", name, v)
	case off == EventPort:
		return fmt.Sprintf("%s <- %d (%s)", name, v, EventName(v))
	case off == StatusPort:
		return fmt.Sprintf("%s <- %d (the guest command exited with status %d)", name, v, v)
	}
	return fmt.Sprintf("%s <- %d", name, v)
}
