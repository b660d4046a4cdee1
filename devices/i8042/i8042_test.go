package i8042

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPulseResetCallsReset(t *testing.T) {
	n := 0
	c := New(func() { n++ })
	c.Write(CommandPort, []byte{CmdPulseReset})
	require.Equal(t, 1, n)
	require.Equal(t, 1, c.Resets())
}

func TestOutputPortResetLine(t *testing.T) {
	n := 0
	c := New(func() { n++ })
	c.Write(CommandPort, []byte{CmdWriteOutput})
	c.Write(DataPort, []byte{0x01}) // reset line high: nothing
	require.Zero(t, n)
	c.Write(CommandPort, []byte{CmdWriteOutput})
	c.Write(DataPort, []byte{0x00}) // low: reset
	require.Equal(t, 1, n)
}

func TestCommands(t *testing.T) {
	c := New(nil)
	st := func() byte { b := []byte{0}; c.Read(CommandPort, b); return b[0] }
	data := func() byte { b := []byte{0}; c.Read(DataPort, b); return b[0] }

	require.Equal(t, byte(StatusSystem), st(), "idle: nothing to read, ready for input")
	c.Write(CommandPort, []byte{CmdSelfTest})
	require.NotZero(t, st()&StatusOutputFull)
	require.Equal(t, byte(0x55), data())
	require.Zero(t, st()&StatusOutputFull)

	c.Write(CommandPort, []byte{CmdWriteConfig})
	c.Write(DataPort, []byte{0x47})
	c.Write(CommandPort, []byte{CmdReadConfig})
	require.Equal(t, byte(0x47), data())
	// Pulse commands that keep bit 0 set do not reset.
	c.Write(CommandPort, []byte{0xff})
	require.Zero(t, c.Resets())
}

func TestOtherPortsReadAllOnes(t *testing.T) {
	c := New(nil)
	b := []byte{0}
	c.Read(1, b)
	require.Equal(t, byte(0xff), b[0])
}
