// Package machine builds a virtual machine from a config.Config and runs it.
//
// New is the whole construction, in the steps Firecracker's builder takes,
// each a method in its own file:
//
//	openBackends   backends.go  the devices' host side (disk images, taps,
//	                            shared directories, the vsock socket), opened
//	                            and checked before KVM is touched
//	createVM       vm.go        open KVM, create the VM, map guest RAM, create
//	                            the interrupt controllers, the timer and the vCPUs
//	attachDevices  devices.go   the device manager places every device on its
//	                            bus and connects it to interrupts and the host
//	loadKernel     boot.go      the kernel, initrd, command line and MP table
//	setupVCPUs     boot.go      CPUID, MSRs, registers: vCPU 0 at the entry point
//
// Run puts on the seccomp filters (seccomp.go), starts one goroutine per
// vCPU, each pinned to its own OS thread, and runs each vCPU's loop
// (run.go) against a small interface (vcpu.go), dispatching every VM exit
// to the port-I/O or MMIO bus (exits.go). With --trace or --stats an
// observer watches the exits (observe.go); a device that asks the guest
// for a reset is recorded (failures.go).
//
// Pause stops a running VM and Resume lets it go on (pause.go): the vCPUs
// park on their threads with their state saved, and the devices pause and
// resume through the device manager (devstate.go). A paused VM can be
// written to a snapshot (snapshot.go, in the format of snapfile.go), and
// Restore builds a VM from one (restore.go), in the steps of New.
package machine

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/kiln-vmm/kiln/boot"
	"github.com/kiln-vmm/kiln/devices/serial"
	"github.com/kiln-vmm/kiln/devices/tap"
	"github.com/kiln-vmm/kiln/vmm/config"
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
	snapshotAtReady bool     // pause when init is ready for its job
	saveable        bool     // a pause saves the vCPUs' state (pause.go)
	msrIndices      []uint32 // the MSRs a snapshot saves
	restored        bool     // built from a snapshot

	seccomp seccomp.Mode // filters for kiln's threads (seccomp.go)
	verbose io.Writer    // -v: what the VMM does; nil for nothing
	stderr  io.Writer    // where Log mode says it is on

	// Running (run.go) and pausing (pause.go).
	cpus         []vcpu         // the run loop's vCPUs: vcpus, or a test's fakes
	tids         []atomic.Int32 // each vCPU's thread, for kicks; 0 until it starts
	attention    atomic.Uint32  // attnStop, attnPause: what the vCPU loops look at
	pause        pauseState
	pauseAtReady chan struct{} // init is ready, and the VM pauses (SnapshotAtReady)
	firstRun     time.Time     // when vCPU 0 first entered KVM_RUN
	end          chan struct{} // closed when the VM must stop
	stop         stopOnce
	observe      *observer // --trace and --stats; nil without (observe.go)

	failures failureLog // devices that asked for a reset (failures.go)
	trim     trimmer    // start-up's pages, dropped once it is over (trim.go)
}

// Options are the host-side connections of a machine.
type Options struct {
	Console io.Writer // where the serial console's output goes
	Start   time.Time // when kiln started, for boot-time measurement
	KVMPath string    // "" for /dev/kvm
	// SnapshotAtReady pauses the VM when the guest's init is ready for
	// its job, instead of giving it the job: PausedAtReady is closed,
	// and the caller saves it (SaveSnapshot), then stops it (Stop) or
	// lets it go on (Resume), when init gets its job.
	SnapshotAtReady bool
	// Checkpointable lets a VM run under seccomp filters be paused and
	// saved while it runs (kiln checkpoint of a container): its vCPUs
	// save their state at a pause, and the filters allow what a save
	// does (vmm/seccomp's Needs.Snapshot).
	Checkpointable bool
	// Seccomp filters kiln's system calls from the moment Run starts
	// the vCPUs (seccomp.go). Off, the zero value, lets a process build
	// many machines; with filters, a process runs one.
	Seccomp seccomp.Mode
	// Verbose, if not nil, hears what the VMM does (kiln run -v).
	Verbose io.Writer
	// Stderr is where the VM's trace goes (--trace without a file) and
	// where the filters say they log (KILN_SECCOMP=log); nil discards.
	Stderr io.Writer
	// Taps are taps the caller opened (or made: vmm/hostnet makes a
	// container's in the engine's network namespace, where no other
	// thread of kiln can open it by name). A network device whose Tap
	// names one of them uses it instead of opening a tap of that name.
	// They stay the caller's: the machine does not close them, so a
	// build that fails, and is tried again, finds them open; the caller
	// closes them once the machine is closed.
	Taps []*tap.Tap
}

// New builds the VM described by cfg.
func New(cfg *config.Config, opt Options) (_ *Machine, err error) {
	m := newMachine(cfg, opt)
	m.snapshotAtReady = opt.SnapshotAtReady
	m.saveable = opt.SnapshotAtReady || opt.Checkpointable || opt.Seccomp == seccomp.Off
	defer func() {
		if err != nil {
			m.Close() // what was built so far
		}
	}()
	// 1. The devices' host side: disk images, taps, shared directories,
	// the socket device's socket. What the user named is checked before
	// KVM is touched (backends.go).
	if m.pending, err = openBackends(cfg, opt.Taps); err != nil {
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
	// 6. To take a snapshot: which MSRs a pause saves.
	if m.saveable {
		if m.msrIndices, err = m.sys.MSRIndexList(); err != nil {
			return nil, err
		}
	}
	// 7. With --trace or --stats, an observer for the run loop.
	if m.observe, err = newObserver(cfg, m.start, m.dev, m.stderr); err != nil {
		return nil, err
	}
	return m, nil
}

// newMachine is the machine New and Restore build: the config and the
// options Run needs, nothing of the VM yet.
func newMachine(cfg *config.Config, opt Options) *Machine {
	m := &Machine{cfg: cfg, start: opt.Start, end: make(chan struct{}), pauseAtReady: make(chan struct{}, 1)}
	m.pause.ready = make(chan struct{})
	m.seccomp, m.verbose, m.stderr = opt.Seccomp, opt.Verbose, opt.Stderr
	if m.stderr == nil {
		m.stderr = io.Discard
	}
	if m.start.IsZero() {
		m.start = time.Now()
	}
	return m
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
