// Package config describes one VM to run and checks it before anything is
// built: sizes parsed, files present, counts in range. A Config that passes
// Validate can still fail later (a file that is not a kernel, an initrd that
// does not fit), but never because of a bad number.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Limits on what a VM may ask for.
const (
	MinMemory = 32 << 20 // the kernel alone is loaded at 16 MiB
	MaxMemory = 1 << 40
	MaxCPUs   = 64 // the MP table and guest kernel's NR_CPUS
)

// ErrUsage marks errors in what the user asked for (bad flags, sizes,
// counts), as opposed to failures of the VMM or the host.
var ErrUsage = errors.New("usage")

// SettingError is a value outside what kiln or the host allows for one
// setting of a VM. Setting is the setting's name ("cpus", "memory"), which
// the command line turns into its flag; Max, when not zero, is the largest
// value allowed.
type SettingError struct {
	Setting string
	Value   string // as the user would write it: "65", "16M"
	Problem string // "is out of range (1 to 64)"
	Max     uint64
}

func (e *SettingError) Error() string { return e.Setting + " " + e.Value + " " + e.Problem }

// Unwrap makes every SettingError a usage error.
func (e *SettingError) Unwrap() error { return ErrUsage }

// ErrNotRegular and ErrEmptyFile mark a kernel or initrd path that names
// no usable file: a directory or a device, or an empty file.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrEmptyFile  = errors.New("the file is empty")
)

// Config is one VM: its hardware (Shape) and what it runs, and how kiln
// watches it.
type Config struct {
	Shape

	Command []string // command for the guest init to run; empty: a shell
	Verbose bool     // show the kernel's boot messages in command mode
	// BootTime: report the time from launch to guest user space.
	BootTime bool
	// PrintCmdline: build the VM, print its kernel command line, stop.
	PrintCmdline bool

	// Container, for kiln as an OCI runtime, is the container the
	// guest's init sets up and runs (guest/contract), instead of Command.
	Container *contract.Container
	// Interfaces, if not nil, is how the guest's init configures its
	// network interfaces, instead of what each of Nets says (Job): a
	// container's VM takes the interface the engine made, with all its
	// addresses, routes and MTU (cmd/kiln/oci).
	Interfaces []contract.Interface

	// Observe selects tracing and statistics (observe.go).
	Observe Observe

	// Interactive says the host console is a terminal: the guest's tty
	// does echo and line editing. Otherwise the guest console is raw.
	Interactive bool

	// Snapshot says the VM boots to be snapshotted (kiln snapshot): its
	// kernel is quiet, as for a command, whatever command it runs later.
	Snapshot bool
	// Ready, with Command, makes kiln snapshot a ready-app snapshot:
	// init starts the command and the VM is paused once it is ready
	// (contract.Ready), app included. ReadyTimeout bounds the wait,
	// from the command's start.
	Ready        *contract.Ready
	ReadyTimeout time.Duration
}

// Validate checks c, returning an error wrapping ErrUsage for bad values
// and a plain error for files that cannot be read.
func (c *Config) Validate() error {
	if c.CPUs < 1 || c.CPUs > MaxCPUs {
		return &SettingError{"cpus", strconv.Itoa(c.CPUs), fmt.Sprintf("is out of range (1 to %d)", MaxCPUs), MaxCPUs}
	}
	mem := FormatSize(c.Memory)
	if c.Memory < MinMemory {
		return &SettingError{"memory", mem, "is too small (at least " + FormatSize(MinMemory) + ")", 0}
	}
	if c.Memory > MaxMemory {
		return &SettingError{"memory", mem, "is too large (at most " + FormatSize(MaxMemory) + ")", MaxMemory}
	}
	if host := hostMemory(); host > 0 && c.Memory > host {
		return &SettingError{"memory", mem, "is more than this host's " + FormatSize(host) + " of RAM", host}
	}
	if c.Memory%(4<<10) != 0 {
		return &SettingError{"memory", strconv.FormatUint(c.Memory, 10), "is not a multiple of 4 KiB", 0}
	}
	if err := readable("kernel", c.Kernel); err != nil {
		return err
	}
	if err := c.validateShares(); err != nil {
		return err
	}
	if c.Initrd != "" {
		if err := readable("initrd", c.Initrd); err != nil {
			return err
		}
	}
	return nil
}

// validateShares checks that each share is a directory, with a tag and a
// guest directory of its own.
func (c *Config) validateShares() error {
	tags, dirs := map[string]bool{}, map[string]bool{}
	for _, s := range c.Shares {
		st, err := os.Stat(s.HostDir)
		if err != nil {
			return fmt.Errorf("share: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("share %s: %w: not a directory", s.HostDir, ErrNotRegular)
		}
		if tags[s.Tag] {
			return fmt.Errorf("%w: two shares have the tag %q", ErrUsage, s.Tag)
		}
		if dirs[s.GuestDir] {
			return fmt.Errorf("%w: two shares are mounted at %s", ErrUsage, s.GuestDir)
		}
		tags[s.Tag], dirs[s.GuestDir] = true, true
	}
	return nil
}

// readable checks that path names a regular file we can open.
func readable(what, path string) error {
	if path == "" {
		return fmt.Errorf("%w: no %s given", ErrUsage, what)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s %s: %w", what, path, ErrNotRegular)
	}
	if st.Size() == 0 {
		return fmt.Errorf("%s %s: %w", what, path, ErrEmptyFile)
	}
	return nil
}

func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// ParseSize parses a memory size: a number with an optional unit K, M, G or
// T (powers of 1024; "MiB", "MB" and "M" all mean MiB). A bare number is
// MiB, as in QEMU's -m.
func ParseSize(s string) (uint64, error) {
	t, shift := SplitSize(s, 20)
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || t == "" {
		return 0, fmt.Errorf("%w: bad size %q (want e.g. 512M or 2G)", ErrUsage, s)
	}
	if v == 0 || v > (1<<62)>>shift {
		return 0, fmt.Errorf("%w: size %q is out of range", ErrUsage, s)
	}
	return v << shift, nil
}

// SplitSize splits a size into its digits and the power of two of its
// unit, K, M, G or T (powers of 1024; "MiB", "MB" and "M" all mean MiB),
// or bare for a number without one.
func SplitSize(s string, bare int) (digits string, shift int) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			return t[:n-1], 10 * (i + 1)
		}
	}
	return t, bare
}

// FormatSize prints a byte count in the largest whole binary unit.
func FormatSize(n uint64) string {
	for _, u := range []struct {
		shift int
		name  string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%dB", n)
}
