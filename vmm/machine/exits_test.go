package machine

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/bus"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// fakeExit is an exitSource that says what a test wants KVM to have said,
// as Firecracker's test_run_emulation does with a mocked vCPU.
type fakeExit struct {
	io       kvm.IOExit
	mmio     kvm.MMIOExit
	internal kvm.InternalExit
	event    kvm.SystemEvent
	failure  uint64
}

func (f *fakeExit) IO() kvm.IOExit                   { return f.io }
func (f *fakeExit) MMIO() kvm.MMIOExit               { return f.mmio }
func (f *fakeExit) Internal() kvm.InternalExit       { return f.internal }
func (f *fakeExit) SystemEventType() kvm.SystemEvent { return f.event }
func (f *fakeExit) FailEntryReason() uint64          { return f.failure }
func (f *fakeExit) Regs() (kvm.Regs, error)          { return kvm.Regs{RIP: 0xffffffff81000000}, nil }
func (f *fakeExit) Sregs() (kvm.Sregs, error)        { return kvm.Sregs{}, errors.New("no sregs in a fake") }

// fakeDevice is a bus device that keeps what it was given and answers reads
// with a fixed byte.
type fakeDevice struct {
	writes [][]byte
	offs   []uint64
	answer byte
}

func (r *fakeDevice) Read(off uint64, data []byte) {
	r.offs = append(r.offs, off)
	for i := range data {
		data[i] = r.answer
	}
}

func (r *fakeDevice) Write(off uint64, data []byte) {
	r.offs = append(r.offs, off)
	r.writes = append(r.writes, append([]byte(nil), data...))
}

// testMachine is a machine with only buses: enough for the exit dispatch.
func testMachine(t *testing.T) (*Machine, *fakeDevice, *fakeDevice) {
	port, mmio := &fakeDevice{answer: 0x5a}, &fakeDevice{answer: 0xa5}
	d := &deviceManager{pio: bus.New("pio"), mmio: bus.New("mmio")}
	require.NoError(t, d.pio.Insert("port", 0x100, 8, port))
	require.NoError(t, d.mmio.Insert("mmio", 0xd0000000, 0x1000, mmio))
	return &Machine{dev: d, end: make(chan struct{})}, port, mmio
}

func ended(m *Machine) bool {
	select {
	case <-m.end:
		return true
	default:
		return false
	}
}

func TestExitPortIO(t *testing.T) {
	m, port, _ := testMachine(t)
	// A string OUT of three bytes (rep outsb): three writes of one byte.
	stop, err := m.handleExit(0, &fakeExit{io: kvm.IOExit{Write: true, Size: 1, Port: 0x102, Count: 3, Data: []byte("abc")}}, kvm.ExitIO)
	require.NoError(t, err)
	require.False(t, stop)
	require.Equal(t, [][]byte{{'a'}, {'b'}, {'c'}}, port.writes)
	require.Equal(t, []uint64{2, 2, 2}, port.offs, "the device sees offsets in its window")

	// An IN fills the data KVM hands back to the guest.
	in := make([]byte, 4)
	stop, err = m.handleExit(0, &fakeExit{io: kvm.IOExit{Size: 2, Port: 0x100, Count: 2, Data: in}}, kvm.ExitIO)
	require.NoError(t, err)
	require.False(t, stop)
	require.Equal(t, []byte{0x5a, 0x5a, 0x5a, 0x5a}, in)

	// A port no device holds reads as all ones and is not an error.
	in = []byte{0}
	stop, err = m.handleExit(0, &fakeExit{io: kvm.IOExit{Size: 1, Port: 0x80, Count: 1, Data: in}}, kvm.ExitIO)
	require.NoError(t, err)
	require.False(t, stop)
	require.Equal(t, []byte{0xff}, in)
	require.False(t, ended(m))
}

func TestExitMMIO(t *testing.T) {
	m, _, mmio := testMachine(t)
	stop, err := m.handleExit(0, &fakeExit{mmio: kvm.MMIOExit{Addr: 0xd0000070, Write: true, Data: []byte{1, 0, 0, 0}}}, kvm.ExitMMIO)
	require.NoError(t, err)
	require.False(t, stop)
	require.Equal(t, [][]byte{{1, 0, 0, 0}}, mmio.writes)
	require.Equal(t, []uint64{0x70}, mmio.offs)

	data := make([]byte, 4)
	_, err = m.handleExit(0, &fakeExit{mmio: kvm.MMIOExit{Addr: 0xd0000000, Data: data}}, kvm.ExitMMIO)
	require.NoError(t, err)
	require.Equal(t, []byte{0xa5, 0xa5, 0xa5, 0xa5}, data)
}

func TestExitsThatEndTheVM(t *testing.T) {
	for _, c := range []struct {
		name   string
		reason kvm.ExitReason
		exit   fakeExit
		want   Reason
		err    string // in the result's error
	}{
		{"halt", kvm.ExitHLT, fakeExit{}, ReasonShutdown, "halted with interrupts disabled at RIP 0xffffffff81000000"},
		{"triple fault", kvm.ExitShutdown, fakeExit{}, ReasonShutdown, "vCPU 1: triple fault"},
		{"reset event", kvm.ExitSystemEvent, fakeExit{event: kvm.SystemEventReset}, ReasonReset, ""},
		{"shutdown event", kvm.ExitSystemEvent, fakeExit{event: kvm.SystemEventShutdown}, ReasonShutdown, "system event"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _, _ := testMachine(t)
			stop, err := m.handleExit(1, &c.exit, c.reason)
			require.NoError(t, err)
			require.True(t, stop, "the vCPU stops")
			require.True(t, ended(m), "the VM ends")
			require.Equal(t, c.want, m.stop.result.Reason)
			if c.err != "" {
				require.ErrorContains(t, m.stop.result.Err, c.err)
			}
		})
	}
}

func TestExitsThatAreErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		reason kvm.ExitReason
		exit   fakeExit
		err    string
	}{
		{"internal error", kvm.ExitInternalError, fakeExit{internal: kvm.InternalExit{Suberror: 1, Data: []uint64{0x1234}}},
			"vCPU 0: KVM_EXIT_INTERNAL_ERROR: emulation failure at RIP 0xffffffff81000000"},
		{"failed entry", kvm.ExitFailEntry, fakeExit{failure: 0x21}, "hardware entry failure reason 0x21"},
		{"unknown exit", kvm.ExitReason(200), fakeExit{}, "unexpected exit"},
		{"hypercall", kvm.ExitHypercall, fakeExit{}, "unexpected exit KVM_EXIT_HYPERCALL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _, _ := testMachine(t)
			stop, err := m.handleExit(0, &c.exit, c.reason)
			require.True(t, stop)
			require.ErrorContains(t, err, c.err)
		})
	}
}

func TestExitInterruptedGoesBackIn(t *testing.T) {
	m, _, _ := testMachine(t)
	stop, err := m.handleExit(0, &fakeExit{}, kvm.ExitIntr)
	require.NoError(t, err)
	require.False(t, stop)
	require.False(t, ended(m))
}
