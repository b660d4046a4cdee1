package kvm

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStateJSONRoundTrip(t *testing.T) {
	type all struct {
		L *LAPICState
		C *IRQChip
		P *PITState2
		E *VCPUEvents
		X *XSave
	}
	in := all{new(LAPICState), &IRQChip{ChipID: IRQChipIOAPIC}, new(PITState2), new(VCPUEvents), new(XSave)}
	for i := range in.L.Regs {
		in.L.Regs[i] = byte(i)
	}
	in.C.State[7], in.P.State[100], in.E.State[63] = 1, 2, 3
	for i := range in.X.Region {
		in.X.Region[i] = uint32(i) * 0x01010101
	}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.Less(t, len(b), 12<<10, "base64, not arrays of numbers")
	var out all
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in, out)

	var x XSave
	require.ErrorContains(t, json.Unmarshal([]byte(`"AAAA"`), &x), "XSAVE area of 3 bytes")
	var c IRQChip
	require.Error(t, json.Unmarshal([]byte(`{"chip":1,"state":"AA=="}`), &c))
}
