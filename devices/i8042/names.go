package i8042

import (
	"fmt"

	"github.com/kiln-vmm/kiln/devices"
)

// RegisterName names the register at offset off: the data port, and at
// port 0x64 the status register when read and the command register when
// written.
func RegisterName(off uint64, write bool) string {
	switch off {
	case DataPort:
		return "data"
	case CommandPort:
		if write {
			return "command"
		}
		return "status"
	}
	return fmt.Sprintf("offset %d", off)
}

// CommandName says what a controller command does.
func CommandName(cmd byte) string {
	switch cmd {
	case CmdReadConfig:
		return "read configuration byte"
	case CmdWriteConfig:
		return "write configuration byte"
	case CmdDisableAux:
		return "disable mouse port"
	case CmdEnableAux:
		return "enable mouse port"
	case CmdTestAux:
		return "test mouse port"
	case CmdSelfTest:
		return "controller self-test"
	case CmdTestKbd:
		return "test keyboard port"
	case CmdDisableKbd:
		return "disable keyboard port"
	case CmdEnableKbd:
		return "enable keyboard port"
	case CmdWriteOutput:
		return "write output port"
	}
	if cmd >= pulseCommandBase {
		if cmd&outputResetLine == 0 {
			return "pulse the CPU reset line"
		}
		return "pulse output lines"
	}
	return "unknown command"
}

// Describe says in words what a one-byte access at off did, for traces. A
// write that resets the machine begins with "reset": "reset (command 0xfe:
// pulse the CPU reset line)".
func (c *Controller) Describe(off uint64, write bool, data []byte) string {
	name := RegisterName(off, write)
	if len(data) != 1 {
		return fmt.Sprintf("%s: %d-byte access ignored", name, len(data))
	}
	v := data[0]
	switch {
	case name == "command" && v >= pulseCommandBase && v&outputResetLine == 0:
		return fmt.Sprintf("reset (command %#02x: %s)", v, CommandName(v))
	case name == "command":
		return fmt.Sprintf("command <- %#02x (%s)", v, CommandName(v))
	case name == "status":
		return fmt.Sprintf("status -> %#02x (%s)", v, statusBits(v))
	case write:
		return fmt.Sprintf("%s <- %#02x", name, v)
	}
	return fmt.Sprintf("%s -> %#02x", name, v)
}

// statusNames name the bits of the status register.
var statusNames = []devices.Bit{
	{Mask: StatusOutputFull, Name: "output full"},
	{Mask: StatusInputFull, Name: "input full"},
	{Mask: StatusSystem, Name: "self-test passed"},
	{Mask: StatusCommand, Name: "last write was a command"},
}

// statusBits names the set bits of a status register value.
func statusBits(v byte) string { return devices.BitNames(uint64(v), statusNames, ", ", "idle") }
