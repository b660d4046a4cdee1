package virtio

import (
	"encoding/binary"
	"fmt"

	"github.com/kiln-vmm/kiln/devices"
)

// The transport's register window in words, for kiln run --trace (VIRTIO
// 1.2, 4.2.2 "MMIO Device Register Layout").
var registerNames = map[uint64]string{
	RegMagicValue:        "MagicValue",
	RegVersion:           "Version",
	RegDeviceID:          "DeviceID",
	RegVendorID:          "VendorID",
	RegDeviceFeatures:    "DeviceFeatures",
	RegDeviceFeaturesSel: "DeviceFeaturesSel",
	RegDriverFeatures:    "DriverFeatures",
	RegDriverFeaturesSel: "DriverFeaturesSel",
	RegQueueSel:          "QueueSel",
	RegQueueNumMax:       "QueueNumMax",
	RegQueueNum:          "QueueNum",
	RegQueueReady:        "QueueReady",
	RegQueueNotify:       "QueueNotify",
	RegInterruptStatus:   "InterruptStatus",
	RegInterruptACK:      "InterruptACK",
	RegStatus:            "Status",
	RegQueueDescLow:      "QueueDescLow",
	RegQueueDescHigh:     "QueueDescHigh",
	RegQueueDriverLow:    "QueueDriverLow",
	RegQueueDriverHigh:   "QueueDriverHigh",
	RegQueueDeviceLow:    "QueueDeviceLow",
	RegQueueDeviceHigh:   "QueueDeviceHigh",
	RegSHMSel:            "SHMSel",
	RegSHMLenLow:         "SHMLenLow",
	RegSHMLenHigh:        "SHMLenHigh",
	RegSHMBaseLow:        "SHMBaseLow",
	RegSHMBaseHigh:       "SHMBaseHigh",
	RegConfigGeneration:  "ConfigGeneration",
}

// statusBits name the device status bits (2.1 "Device Status Field").
var statusBits = []devices.Bit{
	{Mask: StatusAcknowledge, Name: "ACKNOWLEDGE"},
	{Mask: StatusDriver, Name: "DRIVER"},
	{Mask: StatusDriverOK, Name: "DRIVER_OK"},
	{Mask: StatusFeaturesOK, Name: "FEATURES_OK"},
	{Mask: StatusDeviceNeedsReset, Name: "DEVICE_NEEDS_RESET"},
	{Mask: StatusFailed, Name: "FAILED"},
}

// interruptBits name the causes in an interrupt status.
var interruptBits = []devices.Bit{
	{Mask: InterruptUsedBuffer, Name: "used buffer"},
	{Mask: InterruptConfigChange, Name: "configuration change"},
}

// Describe says in words what an access to the window did, for traces:
// "Status <- 0xf (ACKNOWLEDGE DRIVER DRIVER_OK FEATURES_OK)".
func (t *Transport) Describe(off uint64, write bool, data []byte) string {
	arrow := "->"
	if write {
		arrow = "<-"
	}
	var b [8]byte
	copy(b[:], data)
	v := binary.LittleEndian.Uint64(b[:])
	if off >= RegConfig {
		return fmt.Sprintf("config[%#x] %s %#0*x", off-RegConfig, arrow, 2*len(data), v)
	}
	name, ok := registerNames[off]
	if !ok {
		return fmt.Sprintf("offset %#x %s %#0*x", off, arrow, 2*len(data), v)
	}
	s := fmt.Sprintf("%s %s %#x", name, arrow, v)
	switch off {
	case RegMagicValue, RegVendorID:
		s += fmt.Sprintf(" (%q)", data)
	case RegDeviceID:
		s += fmt.Sprintf(" (%v)", DeviceType(v))
	case RegStatus:
		s += " (" + statusWords(v) + ")"
	case RegInterruptStatus, RegInterruptACK:
		s += " (" + interruptWords(v) + ")"
	}
	return s
}

// statusWords names the set bits of a device status; 0 is a reset.
func statusWords(v uint64) string { return devices.BitNames(v, statusBits, " ", "reset") }

// interruptWords names the causes in an interrupt status.
func interruptWords(v uint64) string { return devices.BitNames(v, interruptBits, ", ", "none") }
