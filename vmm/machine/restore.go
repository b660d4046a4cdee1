package machine

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/memory"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// Restore builds a VM from the snapshot in dir, at the moment it was
// taken: its init waits for a job, which this VM gives it when it runs.
// cfg says what to run and how to watch it (Command, Interactive,
// Observe); the VM's shape comes from the snapshot, and any cfg setting
// that would change it is refused. cfg.Vsock may give the socket device
// another host path and CID, since VMs restored from one snapshot at once
// cannot share a socket path; cfg.Shares may put other host directories
// behind the snapshot's 9P devices (same number, same tags), since the
// guest mounts them only after the restore; cfg.Nets must give each of
// the snapshot's network devices a tap of its own, and its MAC address
// and addresses, which the guest's init takes with its job.
//
// The steps mirror New's, with state set back instead of a kernel loaded:
// the VM with guest RAM mapped from the snapshot's memory file, the
// devices in the same windows with their registers, then each vCPU's
// state, then the interrupt controllers, timer and clock (Firecracker's
// builder restores in the same order).
func Restore(dir string, cfg *config.Config, opt Options) (_ *Machine, err error) {
	snap, err := ReadSnapshot(dir)
	if err != nil {
		return nil, err
	}
	if snap.App != nil && len(cfg.Command) > 0 {
		return nil, fmt.Errorf("%w: %s holds a running app (%s): a VM restored from it resumes the app and runs no command of its own", config.ErrUsage, dir, strings.Join(snap.App.Argv, " "))
	}
	if err := shapeFromSnapshot(cfg, snap); err != nil {
		return nil, err
	}
	m := newMachine(cfg, opt)
	m.restored = true
	m.saveable = opt.Checkpointable || opt.Seccomp == seccomp.Off
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	// 1. The devices' host side, before KVM is touched (backends.go).
	if m.pending, err = openBackends(cfg, opt.Taps); err != nil {
		return nil, err
	}
	// 2. The VM, with guest RAM mapped privately from the memory file.
	if err := m.createRestoredVM(opt.KVMPath, filepath.Join(dir, MemoryFile), snap); err != nil {
		return nil, err
	}
	// 3. The devices, in the windows the guest's drivers know.
	if err := m.attachDevices(opt.Console); err != nil {
		return nil, err
	}
	m.cmdline = snap.Cmdline
	// 4. vCPU state, then the VM's in-kernel devices, on a host that
	// offers the CPU features the guest booted with.
	supported, err := m.sys.SupportedCPUID()
	if err != nil {
		return nil, err
	}
	if missing := cpu.MissingFeatures(snap.VCPUs[0].CPUID, supported); len(missing) > 0 {
		return nil, fmt.Errorf("%w: the guest booted on a CPU with features this host's KVM does not offer (%s)", ErrSnapshot, strings.Join(missing, "; "))
	}
	svm := !m.host.PVM && cpu.Vendor(supported) == "AuthenticAMD"
	for i, v := range m.vcpus {
		if svm {
			cpu.ForSVM(snap.VCPUs[i])
		}
		// The state passed its checksum: KVM refusing it is a failure
		// of the host's KVM, not a bad snapshot.
		if err := cpu.RestoreState(v, snap.VCPUs[i]); err != nil {
			return nil, err
		}
		m.cpuids = append(m.cpuids, snap.VCPUs[i].CPUID)
	}
	if err := m.restoreVM(snap.VM); err != nil {
		return nil, err
	}
	// 5. The devices' own state, which the device manager hands out; a
	// virtio device the driver had started starts again where it was.
	if err := m.dev.restore(snap.DeviceStates); err != nil {
		return nil, err
	}
	// The guest was stopped for as long as the snapshot lay on disk: tell
	// its watchdogs so. This is advice to the guest; a KVM that does not
	// take it (not every kind implements it) restores the VM all the same.
	for _, v := range m.vcpus {
		_ = v.KVMClockCtrl()
	}
	// 6. The job the guest's init is about to read.
	if snap.Signal.Ready {
		if err := m.giveJob(); err != nil {
			return nil, err
		}
	}
	// 7. Without seccomp filters (or with Checkpointable's), a restored
	// VM can be paused and saved again: which MSRs a pause saves.
	if m.saveable {
		if m.msrIndices, err = m.sys.MSRIndexList(); err != nil {
			return nil, err
		}
	}
	if m.observe, err = newObserver(cfg, m.start, m.dev, m.stderr); err != nil {
		return nil, err
	}
	return m, nil
}

// shapeFromSnapshot gives cfg the snapshot's hardware, with the parts
// that are this VM's own (config.Shape.Attach) kept from cfg: each
// network device on the tap, with the MAC address and addresses, cfg
// gives it.
func shapeFromSnapshot(cfg *config.Config, s *Snapshot) error {
	shape, err := s.Shape.Attach(cfg.Shape)
	if err != nil {
		return err
	}
	cfg.Shape = shape
	return nil
}

// createRestoredVM is createVM for a snapshot: the same VM, vCPUs and
// in-kernel devices, with RAM from the memory file and no boot setup.
func (m *Machine) createRestoredVM(kvmPath, memPath string, snap *Snapshot) error {
	if err := m.openKVM(kvmPath); err != nil {
		return err
	}
	if m.host.PVM != snap.Host.PVM {
		return fmt.Errorf("%w: taken on a host whose KVM is %s, this one's is %s", ErrSnapshot, hostKind(snap.Host.PVM), hostKind(m.host.PVM))
	}
	mem, err := memory.FromFile(memPath, snap.MemSize)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	if err := m.buildVM(mem); err != nil {
		return err
	}
	// The guest measured its TSC once, at boot. On a host whose TSC runs
	// at another rate (beyond 250 ppm of calibration noise), KVM must
	// scale it, or the guest's clock would run fast or slow.
	want, khz := snap.VCPUs[0].TSCKHz, m.host.TSCKHz
	if want != 0 && absDiff(khz, want) > uint64(want)/4000 {
		for _, v := range m.vcpus {
			if err := v.SetTSCKHz(want); err != nil {
				return fmt.Errorf("%w: the guest's TSC ran at %d kHz, this host's runs at %d kHz and KVM cannot scale it: %w", ErrSnapshot, want, khz, err)
			}
		}
		m.host.TSCKHz = want
	}
	return nil
}

func absDiff(a, b uint32) uint64 {
	if a > b {
		return uint64(a - b)
	}
	return uint64(b - a)
}

func hostKind(pvm bool) string {
	if pvm {
		return "kvm-pvm"
	}
	return "hardware KVM"
}

// restoreVM sets the VM's in-kernel devices back: timer, clock, interrupt
// controllers. The clock continues from the moment the snapshot was taken
// (no KVM_CLOCK_REALTIME): the guest's monotonic time neither jumps nor
// stalls; its wall clock is set by init from the job.
func (m *Machine) restoreVM(s VMState) error {
	if err := m.vm.SetPIT2(s.PIT); err != nil {
		return fmt.Errorf("restore the timer: %w", err)
	}
	clock := s.Clock
	clock.Flags = 0
	if err := m.vm.SetClock(clock); err != nil {
		return fmt.Errorf("restore the clock: %w", err)
	}
	for _, c := range []*kvm.IRQChip{s.PICMaster, s.PICSlave, s.IOAPIC} {
		if err := m.vm.SetIRQChip(c); err != nil {
			return fmt.Errorf("restore interrupt controller %d: %w", c.ChipID, err)
		}
	}
	return nil
}

// Restored reports whether the machine was built from a snapshot.
func (m *Machine) Restored() bool { return m.restored }
