package machine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// A snapshot is a paused VM in a directory: state.json holds every
// register of the vCPUs, the interrupt controllers, the timer, the clock
// and each device, and memory holds the guest's RAM. kiln takes it when
// the guest's init waits for its job (guest/contract), so every VM
// restored from it resumes at that moment, a booted guest ready to run a
// command, and gets a job of its own.
//
// Taking one: New with Options.SnapshotAtReady and Run, which pauses the
// VM when init is ready (PausedAtReady; every vCPU has stopped and saved
// its registers on its own thread, pause.go), then SaveSnapshot, and Stop
// or Resume. Any paused VM can be saved the same way (Pause, SaveSnapshot,
// Resume), if its devices can be. Restoring one: Restore, then Run.

// Snapshot file names inside a snapshot directory.
const (
	StateFile  = "state.json"
	MemoryFile = "memory"
)

// SnapshotFormat is the version of state.json's layout. A snapshot of
// another format is refused, never restored half-understood.
const SnapshotFormat = 2

// Snapshot is the state state.json holds (snapfile.go has the file's
// layout).
type Snapshot struct {
	Format  int       `json:"-"` // from state.json's envelope (snapfile.go)
	Build   string    `json:"-"` // the kiln binary that wrote it
	Created time.Time `json:"created"`

	// Shape is the VM's hardware: what a restore rebuilds before it
	// sets the state back.
	Shape   config.Shape `json:"shape"`
	Host    config.Host  `json:"host"`
	Cmdline string       `json:"cmdline"` // the kernel's, for the record

	VM    VMState      `json:"vm"`
	VCPUs []*cpu.State `json:"vcpus"`
	// The devices' states, from the device manager (devstate.go): in
	// state.json, its fields sit beside the others ("serial", "i8042",
	// "signal", "virtio").
	DeviceStates
	MemSize uint64 `json:"memory_size"`

	// App, in a ready-app snapshot, is the app that was running and
	// ready when it was taken: a VM restored from it resumes the app
	// and runs no command of its own.
	App *App `json:"app,omitempty"`
}

// App is a ready-app snapshot's app: its command and the condition it
// met.
type App struct {
	Argv  []string       `json:"argv"`
	Ready contract.Ready `json:"ready"`
}

// ErrNotReady says a ready-app snapshot's app did not become ready: its
// condition was not met in time, or it exited first.
var ErrNotReady = errors.New("snapshot: the app did not become ready")

// DefaultReadyTimeout is how long kiln snapshot waits for an app to
// become ready, from its start, unless told: generous, for guests
// whose kernel work is emulated (kvm-pvm).
const DefaultReadyTimeout = 5 * time.Minute

// VMState is the VM's in-kernel devices: the 8254 timer, kvmclock, and
// the two PICs and the IOAPIC.
type VMState struct {
	PIT       *kvm.PITState2 `json:"pit"`
	Clock     kvm.ClockData  `json:"clock"`
	PICMaster *kvm.IRQChip   `json:"pic_master"`
	PICSlave  *kvm.IRQChip   `json:"pic_slave"`
	IOAPIC    *kvm.IRQChip   `json:"ioapic"`
}

// ErrSnapshot marks a snapshot that cannot be taken or restored: a
// device or a setting a snapshot cannot hold, or a directory that does
// not hold a usable snapshot.
var ErrSnapshot = errors.New("snapshot")

// ErrGuestCrash says the guest crashed or ended where kiln needed it to go
// on: a snapshot's guest that never became ready.
var ErrGuestCrash = errors.New("guest crashed")

// CheckSnapshottable refuses, before anything is booted, a config for
// kiln snapshot whose VM a snapshot cannot hold. Every device can be
// held; a network device's tap, MAC address and addresses are each
// restored VM's own (config.Net), given when it is restored.
//
// A ready-app snapshot (cfg.Ready) runs its command before the pause: it
// needs one, a condition init can wait for, and a timeout beyond a
// --ready-after time. Its shares are mounted, and the app may hold their
// files open: the snapshot keeps each 9P fid's path and open flags, and a
// restored VM opens them again (devices/share/snapshot.go).
func CheckSnapshottable(cfg *config.Config) error {
	r := cfg.Ready
	switch {
	case r == nil && len(cfg.Command) > 0:
		return fmt.Errorf("%w: a snapshot is taken before any command runs, unless it waits for the command to be ready (--ready-port, --ready-file, --ready-after); or give the command when restoring (kiln run --restore DIR -- CMD)", config.ErrUsage)
	case r == nil:
		return nil
	case len(cfg.Command) == 0:
		return fmt.Errorf("%w: --ready-%s: a ready-app snapshot needs the app's command after --", config.ErrUsage, readyFlag(*r))
	}
	if err := r.Check(); err != nil {
		return fmt.Errorf("%w: %w", config.ErrUsage, err)
	}
	if cfg.ReadyTimeout < 0 || (cfg.ReadyTimeout > 0 && r.After >= cfg.ReadyTimeout) {
		return fmt.Errorf("%w: --ready-timeout %v must be longer than --ready-after %v", config.ErrUsage, cfg.ReadyTimeout, r.After)
	}
	return nil
}

// readyFlag names the flag that gives r.
func readyFlag(r contract.Ready) string {
	switch {
	case r.Port != 0:
		return "port"
	case r.File != "":
		return "file"
	}
	return "after"
}

// SnapshotTimes says where the time of taking a snapshot went.
type SnapshotTimes struct {
	Devices  time.Duration // saving the devices and the VM (paused before)
	Memory   time.Duration // writing guest RAM
	Written  uint64        // bytes of RAM written (the rest are holes)
	MemTotal uint64        // bytes of guest RAM
}

// SaveSnapshot writes the paused VM to dir, which it creates; an existing
// dir is replaced. It is written next to dir first and renamed into place,
// so dir holds a whole snapshot or none. The VM must be paused (Pause, or
// PausedAtReady), and may have ended since.
func (m *Machine) SaveSnapshot(dir, build string) (SnapshotTimes, error) {
	var times SnapshotTimes
	m.pause.mu.Lock()
	err := m.stateError("save", phasePaused)
	if err == nil && m.pause.frozen {
		err = &RunStateError{"save", "frozen, its devices running (Freeze): pause it to save it"}
	}
	states, errs := m.pause.states, m.pause.errs
	m.pause.mu.Unlock()
	if err != nil {
		return times, err
	}
	if !m.saveable {
		return times, fmt.Errorf("%w: this VM was built to run with seccomp filters that do not let it be saved (Options.SnapshotAtReady)", ErrSnapshot)
	}
	t0 := time.Now()
	s := &Snapshot{
		Format: SnapshotFormat, Build: build, Created: time.Now().UTC(),
		Shape: m.cfg.Shape,
		Host:  m.host, Cmdline: m.cmdline, MemSize: m.mem.Size(),
	}
	if m.appSnapshot() {
		s.App = &App{Argv: m.cfg.Command, Ready: *m.cfg.Ready}
	}
	for i, st := range states {
		if st == nil {
			err := errs[i]
			if err == nil {
				err = errors.New("it did not stop")
			}
			return times, fmt.Errorf("%w: vCPU %d did not save its state: %w", ErrSnapshot, i, err)
		}
	}
	s.VCPUs = states
	if s.VM, err = m.saveVM(); err != nil {
		return times, err
	}
	if s.DeviceStates, err = m.dev.save(); err != nil {
		return times, err
	}
	times.Devices = time.Since(t0)

	// MkdirTemp makes the directory 0700; the files are 0600.
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return times, fmt.Errorf("write snapshot: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; left over on an error
	t1 := time.Now()
	if times.Written, err = m.mem.WriteFile(filepath.Join(tmp, MemoryFile)); err != nil {
		return times, err
	}
	mem := MemoryFileInfo{Size: m.mem.Size(), CRC32C: fmt.Sprintf("%08x", m.mem.Checksum(castagnoli))}
	times.Memory, times.MemTotal = time.Since(t1), m.mem.Size()
	state, err := encodeSnapshot(s, mem)
	if err != nil {
		return times, err
	}
	if err := os.WriteFile(filepath.Join(tmp, StateFile), state, 0o600); err != nil {
		return times, fmt.Errorf("write snapshot: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return times, fmt.Errorf("replace snapshot %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return times, fmt.Errorf("write snapshot: %w", err)
	}
	return times, nil
}

// saveVM reads the VM's in-kernel devices.
func (m *Machine) saveVM() (s VMState, err error) {
	if s.PIT, err = m.vm.PIT2(); err != nil {
		return s, fmt.Errorf("save the timer: %w", err)
	}
	if s.Clock, err = m.vm.Clock(); err != nil {
		return s, fmt.Errorf("save the clock: %w", err)
	}
	for _, c := range []struct {
		id  uint32
		dst **kvm.IRQChip
	}{{kvm.IRQChipPICMaster, &s.PICMaster}, {kvm.IRQChipPICSlave, &s.PICSlave}, {kvm.IRQChipIOAPIC, &s.IOAPIC}} {
		if *c.dst, err = m.vm.IRQChip(c.id); err != nil {
			return s, fmt.Errorf("save interrupt controller %d: %w", c.id, err)
		}
	}
	return s, nil
}
