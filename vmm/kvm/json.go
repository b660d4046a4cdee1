package kvm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// The state structures KVM hands out as opaque blocks (the local APIC's
// register page, an interrupt controller, the timer, pending events, the
// XSAVE area) go into a snapshot's JSON as base64 strings, not as arrays
// of thousands of numbers: smaller, and quicker to read back when a VM
// is restored.

func (s *LAPICState) MarshalJSON() ([]byte, error) { return json.Marshal(s.Regs[:]) }
func (s *LAPICState) UnmarshalJSON(b []byte) error { return unmarshalBytes(b, s.Regs[:], "local APIC") }
func (c *IRQChip) MarshalJSON() ([]byte, error)    { return json.Marshal(ircJSON{c.ChipID, c.State[:]}) }
func (p *PITState2) MarshalJSON() ([]byte, error)  { return json.Marshal(p.State[:]) }
func (p *PITState2) UnmarshalJSON(b []byte) error  { return unmarshalBytes(b, p.State[:], "timer") }
func (e *VCPUEvents) MarshalJSON() ([]byte, error) { return json.Marshal(e.State[:]) }
func (e *VCPUEvents) UnmarshalJSON(b []byte) error {
	return unmarshalBytes(b, e.State[:], "vCPU events")
}

// ircJSON is an IRQChip in JSON: which controller, and its state.
type ircJSON struct {
	ChipID uint32 `json:"chip"`
	State  []byte `json:"state"`
}

func (c *IRQChip) UnmarshalJSON(b []byte) error {
	var j ircJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if len(j.State) != len(c.State) {
		return fmt.Errorf("interrupt controller state of %d bytes, want %d", len(j.State), len(c.State))
	}
	c.ChipID = j.ChipID
	copy(c.State[:], j.State)
	return nil
}

// MarshalJSON writes the XSAVE area as base64 of its little-endian bytes.
func (x *XSave) MarshalJSON() ([]byte, error) {
	b := make([]byte, 4*len(x.Region))
	for i, v := range x.Region {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return json.Marshal(b)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (x *XSave) UnmarshalJSON(data []byte) error {
	b := make([]byte, 4*len(x.Region))
	if err := unmarshalBytes(data, b, "XSAVE area"); err != nil {
		return err
	}
	for i := range x.Region {
		x.Region[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return nil
}

// unmarshalBytes decodes a base64 JSON string of exactly len(dst) bytes.
func unmarshalBytes(data, dst []byte, what string) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(b) != len(dst) {
		return fmt.Errorf("%s of %d bytes, want %d", what, len(b), len(dst))
	}
	copy(dst, b)
	return nil
}
