package machine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kiln-vmm/kiln/devices/tap"
	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/hostnet"
)

// TakeReport says where the time of taking a snapshot went.
type TakeReport struct {
	Phases Phases        // the boot, up to the pause
	Times  SnapshotTimes // saving it
	End    time.Time     // the snapshot is on disk
}

// TakeSnapshot boots cfg's VM until its init is ready for a job, pauses
// it there and writes it to dir (kiln snapshot, and a warm snapshot's
// child). The snapshot records this kiln binary (BuildID). A process can
// take one snapshot with filters on (opt.Seccomp): they stay on it.
//
// The guest's network interfaces stay down and without addresses: each
// VM restored from the snapshot brings its own tap, MAC address and
// addresses (config.Net), and its init takes them with its job. A
// network device without a tap (a warm snapshot of a shape whose taps
// are each VM's own, as the OCI VMs') gets one connected to nothing
// (hostnet.IsolatedTap), for the guest's driver to find.
func TakeSnapshot(cfg *config.Config, dir string, opt Options) (*TakeReport, error) {
	cfg.Snapshot = true
	opt.SnapshotAtReady = true
	if err := CheckSnapshottable(cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	taps, err := isolatedTaps(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, t := range taps {
			t.Close()
		}
	}()
	opt.Taps = append(append([]*tap.Tap(nil), opt.Taps...), taps...)
	// What needs reading and making before the filters go on: the build
	// of this binary, which the snapshot records, and dir's parent.
	build, err := BuildID()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	m, err := New(cfg, opt)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	// The VM pauses itself when its init is ready; it is saved while it
	// waits, then stopped.
	ran := make(chan Result, 1)
	go func() { ran <- m.Run() }()
	if err := waitReady(m, cfg, ran); err != nil {
		return nil, err
	}
	paused := time.Now()
	r := &TakeReport{}
	r.Times, err = m.SaveSnapshot(dir, build)
	r.End = time.Now()
	m.Stop()
	res := <-ran
	r.Phases = res.Phases
	r.Phases.End = paused // the boot's end: the pause
	if err != nil {
		return nil, err
	}
	return r, nil
}

// waitReady waits until the VM has paused at ready: its init's, or for a
// ready-app snapshot its app's, within cfg.ReadyTimeout of the app's
// start. A VM that ends first, or an app that is not ready in time
// (which stops the VM), is an error.
func waitReady(m *Machine, cfg *config.Config, ran <-chan Result) error {
	var started <-chan struct{}
	var timeout <-chan time.Time
	limit := cfg.ReadyTimeout
	if limit <= 0 {
		limit = DefaultReadyTimeout
	}
	if m.appSnapshot() {
		started = m.CommandStarted()
	}
	for {
		select {
		case <-m.PausedAtReady():
			return nil
		case <-started:
			started = nil
			t := time.NewTimer(limit)
			defer t.Stop()
			timeout = t.C
		case <-timeout:
			m.Stop()
			<-ran
			return fmt.Errorf("%w: %s after %v", ErrNotReady, cfg.Ready.NotMet(), limit)
		case res := <-ran:
			switch {
			case res.Reason == ReasonError:
				return res.Err
			case res.Reason == ReasonShutdown:
				return fmt.Errorf("%w: the guest crashed before it was ready: %v", ErrGuestCrash, res.Err)
			case m.appSnapshot() && res.HasStatus:
				return fmt.Errorf("%w: %s exited with status %d, %s", ErrNotReady, cfg.Command[0], res.ExitStatus, cfg.Ready.NotMet())
			}
			return fmt.Errorf("%w: the guest ended (%v) before its init was ready for a job: is the initramfs kiln's? (run with -v to see the kernel log)", ErrGuestCrash, res.Reason)
		}
	}
}

// isolatedTaps gives each of cfg's network devices that has no tap one
// connected to nothing, and names it in cfg.
func isolatedTaps(cfg *config.Config) ([]*tap.Tap, error) {
	var taps []*tap.Tap
	for i := range cfg.Nets {
		if cfg.Nets[i].Tap != "" {
			continue
		}
		t, err := hostnet.IsolatedTap(fmt.Sprintf("kiln-snap%d", i))
		if err != nil {
			for _, t := range taps {
				t.Close()
			}
			return nil, fmt.Errorf("a tap for the snapshot's network device %s: %w", config.NetName(i), err)
		}
		cfg.Nets[i].Tap = t.Name
		taps = append(taps, t)
	}
	return taps, nil
}

// BuildID names this kiln binary. A snapshot records it, and a warm
// snapshot is only used by the kiln that took it: another build may lay
// out device state differently. It is the Go build ID the linker wrote
// into the binary (a hash of what it was built from, read from its first
// page: buildid.go), or, for a binary built without one, a hash of its
// contents (9 MiB of SHA-256: milliseconds on every warm start).
var BuildID = sync.OnceValues(func() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the kiln binary: %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("read the kiln binary: %w", err)
	}
	defer f.Close()
	head := make([]byte, buildIDSearch)
	n, _ := io.ReadFull(f, head)
	if id, ok := goBuildID(head[:n]); ok {
		sum := sha256.Sum256([]byte(id))
		return "kiln-" + hex.EncodeToString(sum[:])[:16], nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("read the kiln binary: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read the kiln binary: %w", err)
	}
	return "kiln-" + hex.EncodeToString(h.Sum(nil))[:16], nil
})
