// Package i8042 emulates as much of the PC's 8042 keyboard controller as a
// guest needs to reset the machine.
//
// The 8042 sits at two ports: data at 0x60 and status/command at 0x64. Its
// output port has a line wired to the CPU's reset pin, and for decades the
// way to reboot a PC has been to ask the controller to pulse it: command
// 0xFE on port 0x64. Linux does that with reboot=k, and kiln turns it into
// a clean end of the VM. There is no keyboard behind this controller: the
// self-test and configuration commands answer as a controller with nothing
// attached would.
//
// Reference: the IBM PC/AT Technical Reference, "Keyboard controller"; the
// OSDev wiki page "8042 PS/2 Controller".
package i8042

import (
	"sync"

	"github.com/kiln-vmm/kiln/devices"
)

// Offsets inside the device window, which starts at port 0x60
// (vmm/layout places it).
const (
	DataPort    = 0 // 0x60
	CommandPort = 4 // 0x64
)

// Status register bits (read from port 0x64).
const (
	StatusOutputFull = 1 << 0 // a byte waits at port 0x60
	StatusInputFull  = 1 << 1 // the controller has not taken the last write
	StatusSystem     = 1 << 2 // self-test passed
	StatusCommand    = 1 << 3 // last write was to 0x64
)

// Controller commands (written to port 0x64).
const (
	CmdReadConfig    = 0x20
	CmdWriteConfig   = 0x60
	CmdDisableAux    = 0xa7
	CmdEnableAux     = 0xa8
	CmdTestAux       = 0xa9
	CmdSelfTest      = 0xaa
	CmdTestKbd       = 0xab
	CmdDisableKbd    = 0xad
	CmdEnableKbd     = 0xae
	CmdWriteOutput   = 0xd1
	CmdPulseReset    = 0xfe
	selfTestPassed   = 0x55
	outputResetLine  = 1 << 0 // output port bit 0: low resets the CPU
	pulseCommandBase = 0xf0   // 0xF0-0xFF pulse output lines whose bit is 0
)

// Controller is an 8042 whose only consequence is the reset callback.
type Controller struct {
	mu      sync.Mutex
	reset   func()
	status  byte
	config  byte
	out     byte // the output buffer, valid with StatusOutputFull
	pending byte // a command waiting for its data byte on port 0x60
	resets  int
}

// New returns a controller that calls reset when the guest pulses the
// CPU reset line.
func New(reset func()) *Controller {
	return &Controller{reset: reset, status: StatusSystem, config: 0x01 | 0x04}
}

// Resets returns how many times the guest asked for a reset.
func (c *Controller) Resets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resets
}

// Read implements bus.Device.
func (c *Controller) Read(off uint64, data []byte) {
	if !devices.ByteAccess(data, 0xff) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch off {
	case DataPort:
		data[0] = c.out
		c.status &^= StatusOutputFull
	case CommandPort:
		data[0] = c.status
	}
}

// Write implements bus.Device.
func (c *Controller) Write(off uint64, data []byte) {
	if len(data) != 1 {
		return
	}
	c.mu.Lock()
	v := data[0]
	doReset := false
	switch off {
	case DataPort:
		c.status &^= StatusCommand
		switch c.pending {
		case CmdWriteConfig:
			c.config = v
		case CmdWriteOutput:
			doReset = v&outputResetLine == 0
		}
		c.pending = 0
	case CommandPort:
		c.status |= StatusCommand
		switch {
		case v == CmdReadConfig:
			c.output(c.config)
		case v == CmdWriteConfig || v == CmdWriteOutput:
			c.pending = v
		case v == CmdSelfTest:
			c.output(selfTestPassed)
		case v == CmdTestKbd || v == CmdTestAux:
			c.output(0x00)
		case v == CmdDisableKbd:
			c.config |= 0x10
		case v == CmdEnableKbd:
			c.config &^= 0x10
		case v >= pulseCommandBase:
			doReset = v&outputResetLine == 0
		}
	}
	if doReset {
		c.resets++
	}
	c.mu.Unlock()
	if doReset && c.reset != nil {
		c.reset()
	}
}

func (c *Controller) output(b byte) {
	c.out = b
	c.status |= StatusOutputFull
}
