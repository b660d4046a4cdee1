// Package machine builds a virtual machine from a config.Config and runs it.
//
// New is the whole construction, in the steps Firecracker's builder takes,
// each a method in its own file:
//
//	createVM       vm.go       open KVM, create the VM, map guest RAM, create
//	                           the interrupt controllers, the timer and the vCPUs
//	attachDevices  devices.go  the device manager places every device on its
//	                           bus and connects it to interrupts and the host
//	loadKernel     boot.go     the kernel, initrd, command line and MP table
//	setupVCPUs     boot.go     CPUID, MSRs, registers: vCPU 0 at the entry point
//
// Run puts on the seccomp filters (seccomp.go), starts one goroutine per
// vCPU, each pinned to its own OS thread, and dispatches every VM exit to
// the port-I/O or MMIO bus (run.go, exits.go). With --trace or --stats an
// observer watches the exits (observe.go).
package machine

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/kiln-vmm/kiln/boot"
	"github.com/kiln-vmm/kiln/devices/serial"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/memory"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// Machine is a built VM, ready to Run.
type Machine struct {
	cfg   *config.Config
	host  config.Host
	start time.Time

	pending backends // the devices' host side, until the device manager has them
	sys     *kvm.System
	vm      *kvm.VM
	mem     *memory.Guest
	vcpus   []*kvm.VCPU
	dev     *deviceManager

	cmdline string
	entry   boot.Entry
	cpuids  [][]kvm.CPUIDEntry // what each vCPU's CPUID answers

	// Snapshots (snapshot.go, restore.go).
	snapshotAtReady bool         // pause when init is ready for its job
	msrIndices      []uint32     // the MSRs a snapshot saves
	vcpuStates      []*cpu.State // filled by each vCPU as the VM pauses
	saveErrs        []error      // or why a vCPU could not save its state
	restored        bool         // built from a snapshot

	seccomp seccomp.Mode // filters for kiln's threads (seccomp.go)
	verbose io.Writer    // -v: what the VMM does; nil for nothing
	stderr  io.Writer    // where Log mode says it is on

	firstRun time.Time     // when vCPU 0 first entered KVM_RUN
	end      chan struct{} // closed when the VM must stop
	stop     stopOnce
	observe  *observer // --trace and --stats; nil without (observe.go)

	failures failureLog // devices that asked for a reset (failures.go)
}

// Options are the host-side connections of a machine.
type Options struct {
	Console io.Writer // where the serial console's output goes
	Start   time.Time // when kiln started, for boot-time measurement
	KVMPath string    // "" for /dev/kvm
	// SnapshotAtReady pauses the VM when the guest's init is ready for
	// its job, for SaveSnapshot, instead of giving it the job.
	SnapshotAtReady bool
	// Seccomp filters kiln's system calls from the moment Run starts
	// the vCPUs (seccomp.go). Off, the zero value, lets a process build
	// many machines; with filters, a process runs one.
	Seccomp seccomp.Mode
	// Verbose, if not nil, hears what the VMM does (kiln run -v).
	Verbose io.Writer
}

// New builds the VM described by cfg.
func New(cfg *config.Config, opt Options) (_ *Machine, err error) {
	m := &Machine{cfg: cfg, start: opt.Start, end: make(chan struct{}), snapshotAtReady: opt.SnapshotAtReady}
	m.setOptions(opt)
	if m.start.IsZero() {
		m.start = time.Now()
	}
	defer func() {
		if err != nil {
			m.Close() // what was built so far
		}
	}()
	// 1. The devices' host side: disk images, taps, shared directories,
	// the socket device's socket. What the user named is checked before
	// KVM is touched (backends.go).
	if m.pending, err = openBackends(cfg); err != nil {
		return nil, err
	}
	// 2. The VM: KVM, guest RAM, interrupt controllers, timer, vCPUs.
	if err := m.createVM(opt.KVMPath); err != nil {
		return nil, err
	}
	// 3. Devices, each on its bus at the address the layout gives it.
	if err := m.attachDevices(opt.Console); err != nil {
		return nil, err
	}
	// 4. The kernel, its initrd and command line, and the MP table.
	if err := m.loadKernel(); err != nil {
		return nil, err
	}
	// 5. Each vCPU's CPUID, MSRs and APIC; vCPU 0 at the kernel's entry.
	if err := m.setupVCPUs(); err != nil {
		return nil, err
	}
	// 6. To take a snapshot: which MSRs to save.
	if opt.SnapshotAtReady {
		if err := CheckSnapshottable(cfg); err != nil {
			return nil, err
		}
		if m.msrIndices, err = m.sys.MSRIndexList(); err != nil {
			return nil, err
		}
		m.vcpuStates = make([]*cpu.State, len(m.vcpus))
		m.saveErrs = make([]error, len(m.vcpus))
	}
	// 7. With --trace or --stats, an observer for the run loop.
	if m.observe, err = newObserver(cfg, m.start, m.dev); err != nil {
		return nil, err
	}
	return m, nil
}

// setOptions keeps the options Run needs.
func (m *Machine) setOptions(opt Options) {
	m.seccomp, m.verbose, m.stderr = opt.Seccomp, opt.Verbose, os.Stderr
}

// Host returns what the machine found out about the host.
func (m *Machine) Host() config.Host { return m.host }

// Cmdline returns the kernel command line the guest is given.
func (m *Machine) Cmdline() string { return m.cmdline }

// ForeignCmdline returns the command line for this guest under another
// VMM, which has no signal device to hand init its job
// (config.ForeignCmdline).
func (m *Machine) ForeignCmdline() (string, error) {
	return config.ForeignCmdline(m.cfg, m.host, m.dev.kernelParams())
}

// Serial returns the console UART, whose input the host's stdin feeds.
func (m *Machine) Serial() *serial.UART { return m.dev.serial }

// Ending is closed when the VM begins to stop, whatever the reason:
// whatever holds a vCPU for the host (console output waiting for a slow
// stdout) must then let it go, or the stop would wait for the host.
func (m *Machine) Ending() <-chan struct{} { return m.end }

// Close releases the devices, the vCPUs, the VM and its memory.
func (m *Machine) Close() error {
	errs := []error{m.pending.close()}
	m.pending = nil
	if m.dev != nil {
		errs = append(errs, m.dev.close())
	}
	for _, v := range m.vcpus {
		v.Close()
	}
	m.vcpus = nil
	if m.vm != nil {
		m.vm.Close()
		m.vm = nil
	}
	if m.sys != nil {
		m.sys.Close()
		m.sys = nil
	}
	if m.mem != nil {
		m.mem.Close()
		m.mem = nil
	}
	return errors.Join(errs...)
}
