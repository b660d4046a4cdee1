package machine

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/layout"
	"github.com/kiln-vmm/kiln/vmm/memory"
)

// createVM opens KVM, checks what it offers, and creates the VM: guest
// RAM registered as memory slots, the interrupt controllers and timer in
// the kernel, and the vCPUs.
func (m *Machine) createVM(kvmPath string) error {
	if err := m.openKVM(kvmPath); err != nil {
		return err
	}
	// Guest RAM: anonymous host memory.
	mem, err := memory.New(m.cfg.Memory)
	if err != nil {
		return err
	}
	return m.buildVM(mem)
}

// openKVM opens the KVM device and creates an empty VM.
func (m *Machine) openKVM(kvmPath string) (err error) {
	if kvmPath == "" {
		kvmPath = kvm.DevicePath
	}
	if m.sys, err = kvm.OpenPath(kvmPath); err != nil {
		return err
	}
	if max := m.sys.MaxVCPUs(); m.cfg.CPUs > max {
		return &config.SettingError{Setting: "cpus", Value: strconv.Itoa(m.cfg.CPUs),
			Problem: fmt.Sprintf("is more than this host's KVM allows (%d)", max), Max: uint64(max)}
	}
	m.host.PVM = kvm.IsPVM()
	m.vm, err = m.sys.CreateVM()
	return err
}

// buildVM gives the VM its RAM (registered as memory slots), the
// interrupt controllers and timer, and its vCPUs.
func (m *Machine) buildVM(mem *memory.Guest) (err error) {
	m.mem = mem
	if err = m.registerMemory(); err != nil {
		return err
	}
	// Interrupt controllers (PIC, IOAPIC, local APICs) and the PIT, in the
	// kernel, after the pages KVM needs for itself on Intel VT. After the
	// memory slots, too: on a kvm-pvm host, slots registered once the
	// interrupt controllers exist made a restore's setup 5 ms slower
	// (measured, 9 restores each way).
	if err = m.vm.SetTSSAddr(layout.TSSAddr); err != nil {
		return err
	}
	if err = m.vm.SetIdentityMapAddr(layout.IdentityMapAddr); err != nil {
		return err
	}
	if err = m.vm.CreateIRQChip(); err != nil {
		return err
	}
	if err = m.vm.CreatePIT2(); err != nil {
		return err
	}
	// The vCPUs. The TSC frequency of vCPU 0 goes on the command line of a
	// PVM guest, whose own calibration is slow and unreliable.
	for i := 0; i < m.cfg.CPUs; i++ {
		v, err := m.vm.CreateVCPU(i)
		if err != nil {
			return err
		}
		m.vcpus = append(m.vcpus, v)
	}
	khz, err := m.vcpus[0].TSCKHz()
	if err != nil {
		return err
	}
	m.host.TSCKHz = khz
	return nil
}

// registerMemory tells KVM where each region of guest RAM is.
func (m *Machine) registerMemory() error {
	for i, r := range m.mem.Regions() {
		if err := m.vm.SetUserMemoryRegion(uint32(i), r.Addr, r.Size, r.HostAddr()); err != nil {
			return err
		}
	}
	return nil
}

// attachDevices creates the device manager with the devices every VM has
// and the virtio devices whose host side openBackends opened.
func (m *Machine) attachDevices(console io.Writer) error {
	m.dev = newDeviceManager(m.vm, m.mem)
	bs := m.pending
	m.pending = nil // the device manager's now
	reset := func() { m.stop.Do(m, Result{Reason: ReasonReset}) }
	if err := m.dev.addLegacy(console, reset, m.onSignal); err != nil {
		bs.close()
		return err
	}
	if err := m.dev.addBackends(bs); err != nil {
		return err
	}
	for _, v := range m.dev.virtio {
		v.transport.OnFailure(func(err error) { m.deviceFailed(v.name, v.where(), err) })
	}
	return nil
}

// onSignal hears the guest's init on the signal device, on the vCPU thread
// that wrote the event. When init is ready, it gets its job, or, to take
// a snapshot, the VM pauses: this vCPU parks before it enters the guest
// again, so init reads nothing of its job before the pause, and Run's
// goroutine stops the others (pause.go).
//
// A ready-app snapshot (config.Config.Ready) pauses at EventAppReady
// instead: at EventReady init gets the job that starts the app, and
// when the app is ready init asks for a job again, which a VM restored
// from the snapshot hands it.
func (m *Machine) onSignal(e contract.Event) {
	if e != contract.EventReady && e != contract.EventAppReady {
		return
	}
	if m.snapshotAtReady && (e == contract.EventAppReady) == m.appSnapshot() {
		if began, _ := m.beginPause(true); began {
			// Run's goroutine completes the pause. It has taken the
			// last one: a pause begins only once the one before has
			// ended.
			select {
			case m.pauseAtReady <- struct{}{}:
			default:
			}
		}
		return
	}
	if err := m.giveJob(); err != nil {
		m.stop.Do(m, Result{Reason: ReasonError, Err: err})
	}
}

// appSnapshot reports whether the VM boots to take a ready-app snapshot:
// its command starts before the pause.
func (m *Machine) appSnapshot() bool {
	return m.snapshotAtReady && m.cfg.Ready != nil && len(m.cfg.Command) > 0
}

// giveJob hands the guest's init its job on the signal device.
func (m *Machine) giveJob() error {
	job, err := m.job()
	if err != nil {
		return err
	}
	m.dev.signal.SetJob(job)
	return nil
}

// job is the guest's job with this VM's own entropy and the time now.
func (m *Machine) job() ([]byte, error) {
	j := m.cfg.Job()
	j.Seed = make([]byte, 32)
	if _, err := getrandom(j.Seed); err != nil {
		return nil, fmt.Errorf("entropy for the guest: %w", err)
	}
	j.Time = time.Now().UnixNano()
	return j.Marshal()
}

// getrandom fills b from the host kernel's random number generator.
func getrandom(b []byte) (int, error) {
	for {
		n, err := unix.Getrandom(b, 0)
		if err != unix.EINTR {
			return n, err
		}
	}
}
