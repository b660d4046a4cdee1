// Package machine builds a virtual machine from a config.Config and runs it.
//
// New is the whole construction in numbered steps, each a call into the
// package that knows how: open KVM and create the VM, map guest RAM, create
// the interrupt controllers and timer, create the vCPUs, place the devices on
// the buses, load the kernel, set each vCPU at the entry point, and attach
// the observer that --trace and --stats read (observe.go). Run
// starts one goroutine per vCPU, each pinned to its own OS thread, and
// dispatches every VM exit to the port-I/O or MMIO bus (run.go).
package machine

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kiln-vmm/kiln/boot"
	"github.com/kiln-vmm/kiln/devices/i8042"
	"github.com/kiln-vmm/kiln/devices/serial"
	"github.com/kiln-vmm/kiln/devices/signal"
	"github.com/kiln-vmm/kiln/devices/virtio"
	"github.com/kiln-vmm/kiln/vmm/bus"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/layout"
	"github.com/kiln-vmm/kiln/vmm/memory"
)

// Machine is a built VM, ready to Run.
type Machine struct {
	cfg   *config.Config
	host  config.Host
	start time.Time

	sys   *kvm.System
	vm    *kvm.VM
	mem   *memory.Guest
	vcpus []*kvm.VCPU

	pio, mmio *bus.Bus
	Serial    *serial.UART
	i8042     *i8042.Controller
	signal    *signal.Device

	virtio       []*virtio.Transport
	deviceParams []string    // kernel parameters announcing devices
	files        []*os.File  // eventfds, closed with the machine
	closers      []io.Closer // device back ends (disk images)

	cmdline string
	entry   boot.Entry

	end  chan struct{} // closed when the VM must stop
	stop stopOnce

	observe *observer // --trace and --stats; nil without (observe.go)
}

// Options are the host-side connections of a machine.
type Options struct {
	Console io.Writer // where the serial console's output goes
	Start   time.Time // when kiln started, for boot-time measurement
	KVMPath string    // "" for /dev/kvm
}

// New builds the VM described by cfg.
func New(cfg *config.Config, opt Options) (_ *Machine, err error) {
	m := &Machine{cfg: cfg, start: opt.Start, end: make(chan struct{})}
	if m.start.IsZero() {
		m.start = time.Now()
	}
	defer func() {
		if err != nil {
			m.Close() // what was built so far
		}
	}()

	// 1. Open /dev/kvm, check what it offers, create an empty VM.
	path := opt.KVMPath
	if path == "" {
		path = kvm.DevicePath
	}
	if m.sys, err = kvm.OpenPath(path); err != nil {
		return nil, err
	}
	if max := m.sys.MaxVCPUs(); cfg.CPUs > max {
		return nil, fmt.Errorf("%w: --cpus %d: this host's KVM allows at most %d", config.ErrUsage, cfg.CPUs, max)
	}
	m.host.PVM = kvm.IsPVM()
	if m.vm, err = m.sys.CreateVM(); err != nil {
		return nil, err
	}

	// 2. Guest RAM: anonymous host memory, registered as memory slots.
	if m.mem, err = memory.New(cfg.Memory); err != nil {
		return nil, err
	}
	for i, r := range m.mem.Regions() {
		if err = m.vm.SetUserMemoryRegion(uint32(i), r.Addr, r.Size, r.HostAddr()); err != nil {
			return nil, err
		}
	}

	// 3. Interrupt controllers (PIC, IOAPIC, local APICs) and the PIT, in
	// the kernel, after the pages KVM needs for itself on Intel VT.
	if err = m.vm.SetTSSAddr(layout.TSSAddr); err != nil {
		return nil, err
	}
	if err = m.vm.SetIdentityMapAddr(layout.IdentityMapAddr); err != nil {
		return nil, err
	}
	if err = m.vm.CreateIRQChip(); err != nil {
		return nil, err
	}
	if err = m.vm.CreatePIT2(); err != nil {
		return nil, err
	}

	// 4. vCPUs. The TSC frequency of vCPU 0 goes on the command line of a
	// PVM guest, whose own calibration is slow and unreliable.
	for i := 0; i < cfg.CPUs; i++ {
		v, err := m.vm.CreateVCPU(i)
		if err != nil {
			return nil, err
		}
		m.vcpus = append(m.vcpus, v)
	}
	if khz, err := m.vcpus[0].TSCKHz(); err == nil {
		m.host.TSCKHz = khz
	}

	// 5. Devices, each on its bus at the address the layout gives it.
	m.pio, m.mmio = bus.New("pio"), bus.New("mmio")
	m.Serial = serial.New(m.vm.IRQLine(layout.COM1IRQ), opt.Console)
	m.i8042 = i8042.New(func() { m.stop.Do(m, Result{Reason: ReasonReset}) })
	m.signal = signal.New(nil)
	for _, d := range []struct {
		name       string
		base, size uint64
		dev        bus.Device
	}{
		{"serial", layout.COM1Port, layout.UARTSize, m.Serial},
		{"i8042", layout.I8042DataPort, i8042.WindowSize, m.i8042},
		{"signal", layout.SignalPort, layout.SignalSize, m.signal},
	} {
		if err = m.pio.Insert(d.name, d.base, d.size, d.dev); err != nil {
			return nil, err
		}
	}

	// Virtio devices in MMIO windows: disks, network, the entropy source.
	for i, d := range cfg.Disks {
		b, err := virtio.NewBlock(d.Path, d.ReadOnly, "kiln-"+config.DiskName(i))
		if err != nil {
			return nil, err
		}
		m.closers = append(m.closers, b)
		if err = m.addVirtio(b); err != nil {
			return nil, err
		}
	}
	for _, n := range cfg.Nets {
		tap, err := virtio.OpenTap(n.Tap)
		if err != nil {
			return nil, err
		}
		dev, err := virtio.NewNet(tap, n.MAC)
		if err != nil {
			tap.Close()
			return nil, err
		}
		m.closers = append(m.closers, dev)
		if err = m.addVirtio(dev); err != nil {
			return nil, err
		}
	}
	if v := cfg.Vsock; v != nil {
		dev, err := virtio.NewVsock(v.CID, v.Path)
		if err != nil {
			return nil, err
		}
		m.closers = append(m.closers, dev)
		if err = m.addVirtio(dev); err != nil {
			return nil, err
		}
	}
	if !cfg.NoRNG {
		if err = m.addVirtio(virtio.NewRNG()); err != nil {
			return nil, err
		}
	}

	// 6. The kernel, its initrd and command line, and the MP table.
	m.cmdline = config.KernelCmdline(cfg, m.host, m.deviceParams)
	if m.entry, err = boot.Load(m.mem, boot.Spec{Kernel: cfg.Kernel, Initrd: cfg.Initrd, Cmdline: m.cmdline}); err != nil {
		return nil, err
	}
	mp, err := boot.MPTable(cfg.CPUs)
	if err != nil {
		return nil, err
	}
	if _, err = m.mem.WriteAt(mp, layout.MPTableAddr); err != nil {
		return nil, fmt.Errorf("write MP table: %w", err)
	}
	if err = cpu.WriteTables(m.mem, m.entry.Protocol); err != nil {
		return nil, err
	}

	// 7. Each vCPU's CPUID, MSRs and APIC; vCPU 0 at the kernel's entry.
	supported, err := m.sys.SupportedCPUID()
	if err != nil {
		return nil, err
	}
	for i, v := range m.vcpus {
		if err = cpu.Setup(v, cpu.GuestCPUID(supported, i, cfg.CPUs, m.host.PVM), m.entry); err != nil {
			return nil, err
		}
	}

	// 8. With --trace or --stats, an observer for the run loop.
	if m.observe, err = newObserver(cfg, m.start, m.pio, m.mmio); err != nil {
		return nil, err
	}
	return m, nil
}

// Host returns what the machine found out about the host.
func (m *Machine) Host() config.Host { return m.host }

// Cmdline returns the kernel command line the guest is given.
func (m *Machine) Cmdline() string { return m.cmdline }

// Close releases the VM, its vCPUs and its memory.
func (m *Machine) Close() {
	for _, t := range m.virtio {
		t.Write(virtio.RegStatus, []byte{0, 0, 0, 0}) // reset: stops device goroutines
	}
	for _, f := range m.files {
		f.Close()
	}
	for _, c := range m.closers {
		c.Close()
	}
	for _, v := range m.vcpus {
		v.Close()
	}
	m.vcpus = nil
	if m.vm != nil {
		m.vm.Close()
	}
	if m.sys != nil {
		m.sys.Close()
	}
	if m.mem != nil {
		m.mem.Close()
	}
}
