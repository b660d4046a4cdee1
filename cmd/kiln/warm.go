package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/machine"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// kiln run --warm: start the VM from a snapshot of itself, kept in a
// cache beside the guest kernel's and taken the first time it is asked
// for. The cache is keyed by everything that shapes the VM, so a VM with
// another kernel, initramfs, command line, size or devices, or a kiln
// binary of another build, gets a snapshot of its own; and a snapshot
// that is stale or corrupt is taken again, never used.
//
// The snapshot is taken by a kiln snapshot of its own, a child process:
// a kiln runs one VM, whose seccomp filters go on once it is built and
// stay until kiln ends, and the restored VM must still be built after
// the snapshot's VM has run.

// warmStart returns a machine restored from cfg's warm snapshot, taking
// the snapshot first if there is none that can be used.
func warmStart(cfg *config.Config, opt machine.Options) (*machine.Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := warmDir(cfg)
	if err != nil {
		return nil, err
	}
	return restoreOrTake(dir, restoreConfig(cfg), opt, func(why string) error {
		if why != "none yet" {
			fmt.Fprintf(os.Stderr, "kiln: warm snapshot %s: %s; taking it again\n", dir, why)
		}
		return takeWarm(cfg, dir, opt.Seccomp)
	})
}

// restoreOrTake restores cfg's VM from the snapshot in dir, first taking
// it with take when there is none that can be used (take is told why),
// and once more when a snapshot valid on disk is refused (a host that
// changed under it). One kiln at a time takes a given snapshot; the
// others wait for it on dir's lock.
func restoreOrTake(dir string, cfg *config.Config, opt machine.Options, take func(why string) error) (*machine.Machine, error) {
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if why := usable(dir); why != "" {
		if err := take(why); err != nil {
			return nil, err
		}
	}
	m, err := machine.Restore(dir, cfg, opt)
	if errors.Is(err, machine.ErrSnapshot) {
		if err := take(err.Error()); err != nil {
			return nil, err
		}
		m, err = machine.Restore(dir, cfg, opt)
	}
	return m, err
}

// restoreConfig is cfg without the hardware settings a restore takes from
// the snapshot. The socket device's path and CID, and the directories
// behind the shares, are this VM's own: they stay.
func restoreConfig(cfg *config.Config) *config.Config {
	c := *cfg
	c.Disks, c.Nets, c.NoRNG = nil, nil, false
	return &c
}

// takeWarm snapshots cfg's VM into dir with kiln snapshot, which says
// on stderr what it does, and why if it fails.
func takeWarm(cfg *config.Config, dir string, mode seccomp.Mode) error {
	fmt.Fprintf(os.Stderr, "kiln: no warm snapshot of this VM yet: taking one (kiln snapshot), then restoring it\n")
	if err := snapshotChild(cfg, dir, mode, os.Stderr); err != nil {
		return err
	}
	// Read back what was written, once, before any VM relies on it.
	if err := machine.VerifyMemory(dir); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("take the warm snapshot: %w", err)
	}
	return nil
}

// snapshotChild runs kiln snapshot of cfg's VM into dir as a child
// process whose output goes to out. A child that fails has said why on
// out; its exit status is a *childError.
func snapshotChild(cfg *config.Config, dir string, mode seccomp.Mode, out io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("take the warm snapshot: find the kiln binary: %w", err)
	}
	cmd := exec.Command(exe, snapshotArgs(cfg, dir, mode)...)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return &childError{code}
	}
	if err != nil {
		return fmt.Errorf("take the warm snapshot: %w", err)
	}
	return nil
}

// snapshotArgs are the kiln snapshot arguments that build cfg's VM, with
// its console (-v) and filters, and write it to dir.
func snapshotArgs(cfg *config.Config, dir string, mode seccomp.Mode) []string {
	args := []string{"snapshot", "--out", dir, "--kernel", cfg.Kernel, "--initrd", cfg.Initrd,
		"--cmdline", cfg.Cmdline, "--cpus", strconv.Itoa(cfg.CPUs), "--memory", config.FormatSize(cfg.Memory)}
	for _, d := range cfg.Disks {
		v := d.Path
		if d.ReadOnly {
			v += ",ro"
		}
		args = append(args, "--disk", v)
	}
	if v := cfg.Vsock; v != nil {
		args = append(args, "--vsock", fmt.Sprintf("%d,%s", v.CID, v.Path))
	}
	for _, s := range cfg.Shares {
		v := s.HostDir + ":" + s.GuestDir + ",tag=" + s.Tag
		if s.ReadOnly {
			v += ",ro"
		}
		args = append(args, "--share", v)
	}
	if cfg.NoRNG {
		args = append(args, "--no-rng")
	}
	if cfg.Verbose {
		args = append(args, "-v")
	}
	if mode == seccomp.Off {
		args = append(args, "--no-seccomp")
	}
	return args
}

// childError is the exit status of a kiln run as a child, which has
// already said what went wrong: kiln passes it on without a line of its
// own.
type childError struct{ code int }

func (e *childError) Error() string { return fmt.Sprintf("kiln exited with status %d", e.code) }

// usable says why the snapshot in dir cannot be used, or "" if it can.
func usable(dir string) string {
	s, err := machine.ReadSnapshot(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "none yet"
	}
	if err != nil {
		return err.Error()
	}
	build, err := buildID()
	if err != nil {
		return err.Error()
	}
	if s.Build != build {
		return "taken by another kiln build (" + s.Build + ")"
	}
	return ""
}

// cacheDir is where kiln keeps what it builds for reuse: $KILN_CACHE, or
// kiln under the user's cache directory (~/.cache/kiln), as the guest
// kernel's build does.
func cacheDir() (string, error) {
	if d := os.Getenv("KILN_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w (set KILN_CACHE)", err)
	}
	return filepath.Join(d, "kiln"), nil
}

// warmKey is everything that shapes cfg's VM: when any of it changes, the
// warm snapshot is another one.
type warmKey struct {
	Format  int          `json:"format"`
	Build   string       `json:"build"`
	Kernel  fileIdentity `json:"kernel"`
	Initrd  fileIdentity `json:"initrd"`
	Cmdline string       `json:"cmdline"`
	CPUs    int          `json:"cpus"`
	Memory  uint64       `json:"memory"`
	Disks   []diskKey    `json:"disks"`
	Vsock   bool         `json:"vsock"` // its path and CID are each VM's own
	Shares  []shareKey   `json:"shares"`
	NoRNG   bool         `json:"no_rng"`
	Host    string       `json:"host"` // the host's KVM kind and TSC rate
}

// shareKey is a share as far as the snapshot depends on it: its tag. The
// directory behind it is chosen at each restore.
type shareKey struct {
	Tag string `json:"tag"`
}

type diskKey struct {
	File     fileIdentity `json:"file"`
	ReadOnly bool         `json:"ro"`
}

// fileIdentity is a file as a build cache knows it: by its path, inode,
// size and modification time, so a file changed in place is noticed
// without reading it.
type fileIdentity struct {
	Path  string `json:"path"`
	Inode uint64 `json:"inode"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"`
}

func identify(path string) (fileIdentity, error) {
	if path == "" {
		return fileIdentity{}, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fileIdentity{}, err
	}
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err != nil {
		return fileIdentity{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return fileIdentity{Path: abs, Inode: st.Ino, Size: st.Size, MTime: st.Mtim.Nano()}, nil
}

// warmDir returns the cache directory of cfg's warm snapshot.
func warmDir(cfg *config.Config) (string, error) {
	build, err := buildID()
	if err != nil {
		return "", err
	}
	k := warmKey{Format: machine.SnapshotFormat, Build: build, Cmdline: cfg.Cmdline, CPUs: cfg.CPUs,
		Memory: cfg.Memory, Vsock: cfg.Vsock != nil, NoRNG: cfg.NoRNG}
	if k.Kernel, err = identify(cfg.Kernel); err != nil {
		return "", err
	}
	if k.Initrd, err = identify(cfg.Initrd); err != nil {
		return "", err
	}
	for _, d := range cfg.Disks {
		id, err := identify(d.Path)
		if err != nil {
			return "", err
		}
		id.MTime, id.Size = 0, 0 // a disk's contents change with use
		k.Disks = append(k.Disks, diskKey{File: id, ReadOnly: d.ReadOnly})
	}
	for _, s := range cfg.Shares {
		k.Shares = append(k.Shares, shareKey{Tag: s.Tag})
	}
	k.Host = hostKey()
	b, err := json.Marshal(k)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "snapshots", hex.EncodeToString(sum[:])[:20]), nil
}

// hostKey describes the host's KVM as far as a snapshot depends on it.
func hostKey() string {
	s, err := kvm.Open()
	if err != nil {
		return "no kvm"
	}
	defer s.Close()
	return fmt.Sprintf("pvm=%v", kvm.IsPVM())
}

// lockFile takes an exclusive lock on path, creating it, and returns the
// function that releases it.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("warm snapshot cache: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("warm snapshot cache: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
