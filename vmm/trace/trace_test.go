package trace

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/devices"
	"github.com/kiln-vmm/kiln/devices/bootsignal"
	"github.com/kiln-vmm/kiln/devices/i8042"
	"github.com/kiln-vmm/kiln/devices/serial"
	"github.com/kiln-vmm/kiln/devices/virtio"
	"github.com/kiln-vmm/kiln/vmm/bus"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/layout"
)

// pioBus is the port bus of a kiln VM, with the same devices and names.
func pioBus(t *testing.T) (*bus.Bus, *serial.UART) {
	t.Helper()
	b := bus.New("pio")
	uart := serial.New(&devices.CountingInterrupt{}, io.Discard)
	require.NoError(t, b.Insert("serial", layout.COM1Port, layout.UARTSize, uart))
	require.NoError(t, b.Insert("i8042", layout.I8042DataPort, layout.I8042Size, i8042.New(nil)))
	require.NoError(t, b.Insert("signal", layout.SignalPort, layout.SignalSize, bootsignal.New(nil)))
	return b, uart
}

// portExit performs one port access on b, as the run loop does, and
// returns the exit the observer would see.
func portExit(b *bus.Bus, port uint64, write bool, data ...byte) Exit {
	if write {
		b.Write(port, data)
	} else {
		b.Read(port, data)
	}
	r, _ := b.Find(port, len(data))
	return Exit{
		VCPU: 0, Reason: kvm.ExitIO, At: 1500 * time.Millisecond,
		Access: &Access{Space: PIO, Addr: port, Write: write, Size: len(data), Count: 1, Data: data, Device: r},
	}
}

func TestPortAccessLines(t *testing.T) {
	b, _ := pioBus(t)
	for _, c := range []struct {
		port  uint64
		write bool
		data  byte
		want  string
	}{
		{0x3f8, true, 'h', "out   port 0x3f8    size 1 0x68 serial: THR <- 'h'"},
		{0x3f8, true, '\n', `serial: THR <- '\n'`},
		{0x3fd, false, 0, "in    port 0x3fd    size 1 0x60 serial: LSR -> 0x60 (THRE TEMT)"},
		{0x3fb, true, 0x83, "serial: LCR <- 0x83 (8N1 DLAB)"},
		{0x3f8, true, 0x0c, "serial: DLL <- 0x0c"}, // DLAB is set: offset 0 is the divisor
		{0x3f9, true, 0x00, "serial: DLM <- 0x00"},
		{0x3fb, true, 0x03, "serial: LCR <- 0x03 (8N1)"},
		{0x3f9, true, 0x02, "serial: IER <- 0x02 (THRI)"},
		{0x3fa, false, 0, "serial: IIR -> 0xc2 (THR empty)"},
		{0x3fa, false, 0, "serial: IIR -> 0xc1 (no interrupt)"},
		{0x3fa, true, 0x07, "serial: FCR <- 0x07"},
		{0x3fc, true, 0x0b, "serial: MCR <- 0x0b (DTR RTS OUT2)"},
		{0x3fe, false, 0, "serial: MSR -> 0xb0 (CTS DSR DCD)"},
		{0x64, false, 0, "i8042: status -> 0x04 (self-test passed)"},
		{0x64, true, 0xaa, "i8042: command <- 0xaa (controller self-test)"},
		{0x60, false, 0, "i8042: data -> 0x55"},
		{0x64, true, 0xfe, "i8042: reset (command 0xfe: pulse the CPU reset line)"},
		{0x440, true, 1, "signal: event <- 1 (guest user space started)"},
		{0x441, true, 3, "signal: status <- 3 (the guest command exited with status 3)"},
		{0x80, true, 0, "out   port 0x80     size 1 0x00 no device: write ignored"},
		{0x71, false, 0, "in    port 0x71     size 1 0xff no device: reads as all ones"},
	} {
		got := line(portExit(b, c.port, c.write, c.data))
		require.True(t, strings.HasPrefix(got, "[    1.500000] vcpu0 KVM_EXIT_IO "), got)
		require.Contains(t, got, c.want)
	}
}

func TestRepeatedAccessDescribesEach(t *testing.T) {
	b, _ := pioBus(t)
	r, _ := b.Find(0x3f8, 1)
	e := Exit{Reason: kvm.ExitIO, Access: &Access{Space: PIO, Addr: 0x3f8, Write: true, Size: 1, Count: 2, Data: []byte("ok"), Device: r}}
	require.Contains(t, line(e), "size 1 x2 0x6f 0x6b serial: THR <- 'o'; THR <- 'k'")
}

func TestVirtioMMIOLines(t *testing.T) {
	tr := virtio.NewTransport(virtio.NewRNG(), nil, &devices.CountingInterrupt{})
	r := bus.Range{Name: "virtio-rng", Base: layout.VirtioMMIOBase, Size: layout.VirtioMMIOSize, Device: tr}
	mmio := func(off uint64, write bool, v uint32) string {
		data := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
		if write {
			tr.Write(off, data)
		} else {
			tr.Read(off, data)
		}
		return line(Exit{Reason: kvm.ExitMMIO, Access: &Access{Space: MMIO, Addr: r.Base + off, Write: write, Size: 4, Count: 1, Data: data, Device: r}})
	}
	require.Contains(t, mmio(virtio.RegMagicValue, false, 0), `read  addr 0xd0000000 size 4 0x74726976 virtio-rng: MagicValue -> 0x74726976 ("virt")`)
	require.Contains(t, mmio(virtio.RegDeviceID, false, 0), "DeviceID -> 0x4 (rng)")
	require.Contains(t, mmio(virtio.RegStatus, true, 3), "write addr 0xd0000070 size 4 0x00000003 virtio-rng: Status <- 0x3 (ACKNOWLEDGE DRIVER)")
	require.Contains(t, mmio(virtio.RegStatus, true, 0), "Status <- 0x0 (reset)")
	require.Contains(t, mmio(virtio.RegInterruptACK, true, 1), "InterruptACK <- 0x1 (used buffer)")
	require.Contains(t, mmio(virtio.RegConfig+4, false, 0), "config[0x4] -> 0x")
}

func TestHaltAndShutdownShowRegisters(t *testing.T) {
	cpu := &CPUState{
		Regs: kvm.Regs{RIP: 0xffffffff81e0b4a2, RSP: 0xffffffff82003e88, RFLAGS: 0x46},
		Sregs: kvm.Sregs{
			CS:  kvm.Segment{Selector: 0x10, L: 1},
			CR0: 0x80050033, CR3: 0x2a0c000, CR4: 0x6b0, EFER: 0xd01,
		},
	}
	got := line(Exit{VCPU: 1, Reason: kvm.ExitHLT, At: 31 * time.Second, CPU: cpu})
	require.Equal(t, "[   31.000000] vcpu1 KVM_EXIT_HLT   rip 0xffffffff81e0b4a2 rsp 0xffffffff82003e88 rflags 0x46 (interrupts off) "+
		"cs 0x10 (64-bit mode, ring 0) rax 0x0 rbx 0x0 rcx 0x0 rdx 0x0 rsi 0x0 rdi 0x0 rbp 0x0 "+
		"cr0 0x80050033 cr2 0x0 cr3 0x2a0c000 cr4 0x6b0 efer 0xd01", got)

	got = line(Exit{Reason: kvm.ExitShutdown, Detail: "triple fault", CPU: cpu})
	require.Contains(t, got, "KVM_EXIT_SHUTDOWN triple fault rip 0xffffffff81e0b4a2")
}

func TestModes(t *testing.T) {
	for _, c := range []struct {
		s    kvm.Sregs
		want string
	}{
		{kvm.Sregs{}, "real mode"},
		{kvm.Sregs{CR0: cr0PE, CS: kvm.Segment{DB: 1}}, "32-bit protected mode, ring 0, paging off"},
		{kvm.Sregs{CR0: cr0PE | cr0PG, EFER: eferLMA, CS: kvm.Segment{L: 1, DPL: 3}}, "64-bit mode, ring 3"},
		{kvm.Sregs{CR0: cr0PE | cr0PG, EFER: eferLMA, CS: kvm.Segment{DB: 1}}, "compatibility mode, ring 0"},
	} {
		require.Equal(t, c.want, mode(c.s))
	}
}

func TestTracerFiltersByClass(t *testing.T) {
	var out bytes.Buffer
	tr := NewTracer(&out, config.ExitsHLT|config.ExitsShutdown)
	require.True(t, tr.Wants(kvm.ExitHLT))
	require.True(t, tr.Wants(kvm.ExitShutdown))
	require.True(t, tr.Wants(kvm.ExitSystemEvent))
	require.False(t, tr.Wants(kvm.ExitIO))
	require.False(t, tr.Wants(kvm.ExitMMIO))
	var none *Tracer
	require.False(t, none.Wants(kvm.ExitHLT), "a nil tracer traces nothing")

	tr.Log(Exit{Reason: kvm.ExitHLT})
	tr.Log(Exit{Reason: kvm.ExitShutdown})
	require.Empty(t, out.String(), "lines are buffered until Flush")
	require.NoError(t, tr.Flush())
	require.Equal(t, 2, strings.Count(out.String(), "\n"))
}

func TestClassOf(t *testing.T) {
	for r, c := range map[kvm.ExitReason]config.ExitClass{
		kvm.ExitIO: config.ExitsIO, kvm.ExitMMIO: config.ExitsMMIO, kvm.ExitHLT: config.ExitsHLT,
		kvm.ExitShutdown: config.ExitsShutdown, kvm.ExitSystemEvent: config.ExitsShutdown,
		kvm.ExitInternalError: config.ExitsError, kvm.ExitFailEntry: config.ExitsError,
		kvm.ExitIRQWindowOpen: config.ExitsOther, kvm.ExitDebug: config.ExitsOther,
	} {
		require.Equal(t, c, ClassOf(r), "%v", r)
	}
}
