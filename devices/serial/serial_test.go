package serial

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/devices"
)

func newUART() (*UART, *bytes.Buffer, *devices.CountingInterrupt) {
	var out bytes.Buffer
	irq := &devices.CountingInterrupt{}
	return New(irq, &out), &out, irq
}

func rd(u *UART, off uint64) byte {
	b := []byte{0}
	u.Read(off, b)
	return b[0]
}

func wr(u *UART, off uint64, v byte) { u.Write(off, []byte{v}) }

func TestTransmitGoesToOutput(t *testing.T) {
	u, out, irq := newUART()
	for _, c := range []byte("hi\n") {
		wr(u, THR, c)
	}
	require.Equal(t, "hi\n", out.String())
	require.Zero(t, irq.Count(), "no interrupt without IER")
	require.Equal(t, byte(LSRTHRE|LSRTEMT), rd(u, LSR))
}

func TestRegistersTable(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(u *UART)
		off   uint64
		want  byte
	}{
		{"IIR idle reads no interrupt, FIFOs on", nil, IIR, IIRNone | IIRFIFOs},
		{"LCR stores", func(u *UART) { wr(u, LCR, 0x03) }, LCR, 0x03},
		{"SCR stores", func(u *UART) { wr(u, SCR, 0x5a) }, SCR, 0x5a},
		{"DLAB exposes DLL", func(u *UART) { wr(u, LCR, LCRDLAB); wr(u, DLL, 1) }, DLL, 1},
		{"DLAB exposes DLM", func(u *UART) { wr(u, LCR, LCRDLAB); wr(u, DLM, 2) }, DLM, 2},
		{"IER masks reserved bits", func(u *UART) { wr(u, IER, 0xff) }, IER, 0x0f},
		{"MSR has carrier", nil, MSR, MSRDCD | MSRDSR | MSRCTS},
		{"loopback maps RTS|OUT2 to CTS|DCD", func(u *UART) { wr(u, MCR, MCRLoop|MCRRTS|MCROut2) }, MSR, MSRCTS | MSRDCD},
		{"LSR data ready after loopback", func(u *UART) { wr(u, MCR, MCRLoop); wr(u, THR, 'x') }, LSR, LSRDataReady | LSRTHRE | LSRTEMT},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, _, _ := newUART()
			if c.setup != nil {
				c.setup(u)
			}
			require.Equal(t, c.want, rd(u, c.off))
		})
	}
}

func TestDivisorDoesNotTransmit(t *testing.T) {
	u, out, _ := newUART()
	wr(u, LCR, LCRDLAB)
	wr(u, THR, 0x01)
	wr(u, LCR, 0x03)
	require.Empty(t, out.String())
}

func TestTHREInterrupt(t *testing.T) {
	u, _, irq := newUART()
	// Enabling THRE with THR empty raises it at once (Linux checks this).
	wr(u, IER, IERTHRE)
	require.Equal(t, 1, irq.Count())
	require.Equal(t, byte(IIRTHRE|IIRFIFOs), rd(u, IIR))
	// Reading IIR acknowledged it.
	require.Equal(t, byte(IIRNone|IIRFIFOs), rd(u, IIR))
	// Each transmitted byte empties THR again and interrupts.
	wr(u, THR, 'a')
	require.Equal(t, 2, irq.Count())
	require.Equal(t, byte(IIRTHRE|IIRFIFOs), rd(u, IIR))
}

func TestNoInterruptWithoutOUT2(t *testing.T) {
	u, _, irq := newUART()
	wr(u, MCR, 0)
	wr(u, IER, IERTHRE|IERRecv)
	require.Zero(t, irq.Count())
	u.Enqueue([]byte("x"))
	require.Zero(t, irq.Count())
}

func TestReceive(t *testing.T) {
	u, _, irq := newUART()
	wr(u, IER, IERRecv)
	require.Equal(t, 2, u.Enqueue([]byte("ok")))
	require.Equal(t, 1, irq.Count())
	require.Equal(t, byte(IIRRecv|IIRFIFOs), rd(u, IIR))
	require.Equal(t, byte('o'), rd(u, RBR))
	require.Equal(t, byte('k'), rd(u, RBR))
	require.Equal(t, byte(IIRNone|IIRFIFOs), rd(u, IIR))
	require.Zero(t, rd(u, LSR)&LSRDataReady)
	select {
	case <-u.Space():
	default:
		t.Fatal("draining the FIFO did not signal Space")
	}
}

func TestReceiveFIFOIsBounded(t *testing.T) {
	u, _, _ := newUART()
	wr(u, IER, IERRecv)
	big := bytes.Repeat([]byte{'z'}, FIFOSize+10)
	require.Equal(t, FIFOSize, u.Enqueue(big))
	require.Zero(t, u.Enqueue(big))
	wr(u, FCR, 0x02) // clear the receive FIFO
	require.Zero(t, rd(u, LSR)&LSRDataReady)
}

func TestNoInputUntilReceiverEnabled(t *testing.T) {
	u, _, _ := newUART()
	require.Zero(t, u.Enqueue([]byte("early")))
	wr(u, IER, IERRecv)
	select {
	case <-u.Space():
	default:
		t.Fatal("enabling the receiver did not signal Space")
	}
	require.Equal(t, 5, u.Enqueue([]byte("early")))
}

func TestWideAccessesAreIgnored(t *testing.T) {
	u, out, _ := newUART()
	u.Write(THR, []byte{'a', 'b'})
	require.Empty(t, out.String())
	b := []byte{1, 2}
	u.Read(LSR, b)
	require.Equal(t, []byte{0, 0}, b)
}
