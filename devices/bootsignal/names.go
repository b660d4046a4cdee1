package bootsignal

import (
	"fmt"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// RegisterName names the port at offset off in the device's window.
func RegisterName(off uint64) string {
	switch off {
	case contract.EventOffset:
		return "event"
	case contract.StatusOffset:
		return "status"
	case contract.JobOffset:
		return "job"
	}
	return fmt.Sprintf("offset %d", off)
}

// Describe says in words what an access at off did, for traces:
// "event <- 1 (guest user space started)", `job -> "KJOB"`.
func (d *Device) Describe(off uint64, write bool, data []byte) string {
	name := RegisterName(off)
	if len(data) == 0 {
		return name
	}
	v := data[0]
	switch {
	case !write && off == contract.JobOffset:
		return fmt.Sprintf("%s -> %q", name, data)
	case !write:
		return fmt.Sprintf("%s -> %d", name, v)
	case off == contract.EventOffset:
		return fmt.Sprintf("%s <- %d (%v)", name, v, contract.Event(v))
	case off == contract.StatusOffset:
		return fmt.Sprintf("%s <- %d (the guest command exited with status %d)", name, v, v)
	}
	return fmt.Sprintf("%s <- %d", name, v)
}
