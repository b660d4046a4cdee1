package trace

import (
	"fmt"
	"strings"

	"github.com/kiln-vmm/kiln/devices/virtio"
)

// The virtio-mmio transport does not describe its own accesses, so its
// register window is decoded here, from devices/virtio's register
// constants (VIRTIO 1.2, 4.2.2 "MMIO Device Register Layout").
var virtioMMIORegisters = map[uint64]string{
	virtio.RegMagicValue:        "MagicValue",
	virtio.RegVersion:           "Version",
	virtio.RegDeviceID:          "DeviceID",
	virtio.RegVendorID:          "VendorID",
	virtio.RegDeviceFeatures:    "DeviceFeatures",
	virtio.RegDeviceFeaturesSel: "DeviceFeaturesSel",
	virtio.RegDriverFeatures:    "DriverFeatures",
	virtio.RegDriverFeaturesSel: "DriverFeaturesSel",
	virtio.RegQueueSel:          "QueueSel",
	virtio.RegQueueNumMax:       "QueueNumMax",
	virtio.RegQueueNum:          "QueueNum",
	virtio.RegQueueReady:        "QueueReady",
	virtio.RegQueueNotify:       "QueueNotify",
	virtio.RegInterruptStatus:   "InterruptStatus",
	virtio.RegInterruptACK:      "InterruptACK",
	virtio.RegStatus:            "Status",
	virtio.RegQueueDescLow:      "QueueDescLow",
	virtio.RegQueueDescHigh:     "QueueDescHigh",
	virtio.RegQueueDriverLow:    "QueueDriverLow",
	virtio.RegQueueDriverHigh:   "QueueDriverHigh",
	virtio.RegQueueDeviceLow:    "QueueDeviceLow",
	virtio.RegQueueDeviceHigh:   "QueueDeviceHigh",
	virtio.RegSHMSel:            "SHMSel",
	virtio.RegSHMLenLow:         "SHMLenLow",
	virtio.RegSHMLenHigh:        "SHMLenHigh",
	virtio.RegSHMBaseLow:        "SHMBaseLow",
	virtio.RegSHMBaseHigh:       "SHMBaseHigh",
	virtio.RegConfigGeneration:  "ConfigGeneration",
}

// virtioStatusBits name the device status bits (2.1 "Device Status Field").
var virtioStatusBits = []struct {
	bit  uint64
	name string
}{
	{virtio.StatusAcknowledge, "ACKNOWLEDGE"},
	{virtio.StatusDriver, "DRIVER"},
	{virtio.StatusDriverOK, "DRIVER_OK"},
	{virtio.StatusFeaturesOK, "FEATURES_OK"},
	{virtio.StatusDeviceNeedsReset, "DEVICE_NEEDS_RESET"},
	{virtio.StatusFailed, "FAILED"},
}

// describeVirtioMMIO says what an access to a virtio-mmio window did:
// "Status <- 0x0000000f (ACKNOWLEDGE DRIVER DRIVER_OK FEATURES_OK)".
func describeVirtioMMIO(off uint64, write bool, data []byte) string {
	arrow := "->"
	if write {
		arrow = "<-"
	}
	v := value(data)
	if off >= virtio.RegConfig {
		return fmt.Sprintf("config[%#x] %s %#0*x", off-virtio.RegConfig, arrow, 2*len(data), v)
	}
	name, ok := virtioMMIORegisters[off]
	if !ok {
		return fmt.Sprintf("offset %#x %s %#0*x", off, arrow, 2*len(data), v)
	}
	s := fmt.Sprintf("%s %s %#x", name, arrow, v)
	switch off {
	case virtio.RegMagicValue, virtio.RegVendorID:
		s += fmt.Sprintf(" (%q)", data)
	case virtio.RegDeviceID:
		s += fmt.Sprintf(" (%v)", virtio.DeviceType(v))
	case virtio.RegStatus:
		s += " (" + virtioStatus(v) + ")"
	case virtio.RegInterruptStatus, virtio.RegInterruptACK:
		s += " (" + virtioInterrupts(v) + ")"
	}
	return s
}

// virtioStatus names the set bits of a device status; 0 is a reset.
func virtioStatus(v uint64) string {
	if v == 0 {
		return "reset"
	}
	var set []string
	for _, b := range virtioStatusBits {
		if v&b.bit != 0 {
			set = append(set, b.name)
		}
	}
	return strings.Join(set, " ")
}

// virtioInterrupts names the causes in an interrupt status.
func virtioInterrupts(v uint64) string {
	var set []string
	if v&virtio.InterruptUsedBuffer != 0 {
		set = append(set, "used buffer")
	}
	if v&virtio.InterruptConfigChange != 0 {
		set = append(set, "configuration change")
	}
	if len(set) == 0 {
		return "none"
	}
	return strings.Join(set, ", ")
}
