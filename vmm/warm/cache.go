package warm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/machine"
)

// Cache is the directory of warm snapshots: DIR/KEY holds one, and
// DIR/KEY.lock is held while it is taken or restored from.
type Cache struct{ Dir string }

// DefaultCache is $KILN_CACHE/snapshots, or the user's cache directory's
// kiln/snapshots (~/.cache/kiln, beside the guest kernel's build); a
// process without a home (containerd's shim runs kiln without HOME) uses
// /var/cache/kiln.
func DefaultCache() Cache {
	if d := os.Getenv("KILN_CACHE"); d != "" {
		return Cache{Dir: filepath.Join(d, "snapshots")}
	}
	if d, err := os.UserCacheDir(); err == nil {
		return Cache{Dir: filepath.Join(d, "kiln", "snapshots")}
	}
	return Cache{Dir: "/var/cache/kiln/snapshots"}
}

// Path is the directory of the snapshot of shape s: the cache's entry for
// its key, with this kiln build and host.
func (c Cache) Path(s config.Shape) (string, error) {
	build, err := machine.BuildID()
	if err != nil {
		return "", err
	}
	key, err := Key(s, build, HostKind())
	if err != nil {
		return "", err
	}
	return filepath.Join(c.Dir, key), nil
}

// HostKind is the host's KVM as far as a snapshot depends on it: a
// snapshot taken under kvm-pvm needs the PVM adaptations its guest booted
// with, and is refused elsewhere. (The TSC rate is not in it: a restore
// on a host whose TSC runs at another rate has KVM scale the guest's, or
// refuses the snapshot if it cannot, and the cache then takes it again.)
func HostKind() string {
	s, err := kvm.Open()
	if err != nil {
		return "no kvm"
	}
	s.Close()
	if kvm.IsPVM() {
		return "kvm-pvm"
	}
	return "kvm"
}

// Taker takes the snapshot of a VM of shape s into dir.
type Taker func(s config.Shape, dir string) error

// Start returns cfg's VM restored from the warm snapshot of its shape,
// taking the snapshot first with take when there is none that can be
// used; retake, if not nil, hears why an existing one is taken again.
func (c Cache) Start(cfg *config.Config, opt machine.Options, take Taker, retake func(dir string, why error)) (*machine.Machine, error) {
	dir, err := c.Path(cfg.Shape)
	if err != nil {
		return nil, err
	}
	build, err := machine.BuildID()
	if err != nil {
		return nil, err
	}
	return restoreOrTake(dir, build,
		func() (*machine.Machine, error) { return machine.Restore(dir, cfg, opt) },
		func(why error) error {
			if retake != nil && !errors.Is(why, ErrNone) {
				retake(dir, why)
			}
			if err := take(cfg.Shape, dir); err != nil {
				return err
			}
			// Read back what was written, once, before any VM relies
			// on it.
			if err := machine.VerifyMemory(dir); err != nil {
				os.RemoveAll(dir)
				return fmt.Errorf("take the warm snapshot: %w", err)
			}
			return nil
		})
}

// ErrNone says there is no warm snapshot of the shape yet.
var ErrNone = errors.New("no warm snapshot yet")

// restoreOrTake restores from the snapshot in dir, first taking it with
// take when there is none that can be used (take is told why), and once
// more when a snapshot valid on disk is refused by the restore (a host
// that changed under it: machine.ErrSnapshot). One process at a time
// takes a given snapshot; the others wait for it on dir's lock.
func restoreOrTake[M any](dir, build string, restore func() (M, error), take func(why error) error) (M, error) {
	var none M
	unlock, err := lock(dir + ".lock")
	if err != nil {
		return none, err
	}
	defer unlock()
	if ok, why := usable(dir, build); !ok {
		if err := take(why); err != nil {
			return none, err
		}
	}
	m, err := restore()
	if errors.Is(err, machine.ErrSnapshot) {
		if err := take(err); err != nil {
			return none, err
		}
		m, err = restore()
	}
	return m, err
}

// usable reports whether the snapshot in dir can be restored from by the
// kiln build build, and if not, why (ErrNone: there is none).
func usable(dir, build string) (bool, error) {
	s, err := machine.ReadSnapshot(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, ErrNone
	}
	if err != nil {
		return false, err
	}
	if s.Build != build {
		return false, fmt.Errorf("taken by another kiln build (%s)", s.Build)
	}
	return true, nil
}

// lock takes an exclusive lock on path, creating it, and returns the
// function that releases it.
func lock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("warm snapshot cache: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("warm snapshot cache: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// flock takes an exclusive flock on f, waiting for it through signals.
func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			return err
		}
	}
}
