package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

func TestRunFlags(t *testing.T) {
	opt, helped, err := runFlags([]string{"--kernel", "k", "--initrd", "i", "--cpus", "2", "--memory", "1G", "--cmdline", "loglevel=8", "--boot-time", "--report", "r.json", "--", "sh", "-c", "exit 3"})
	require.NoError(t, err)
	require.False(t, helped)
	require.Equal(t, "r.json", opt.report)
	cfg := opt.cfg
	require.Equal(t, "k", cfg.Kernel)
	require.Equal(t, "i", cfg.Initrd)
	require.Equal(t, 2, cfg.CPUs)
	require.EqualValues(t, 1<<30, cfg.Memory)
	require.Equal(t, "loglevel=8", cfg.Cmdline)
	require.True(t, cfg.BootTime)
	require.Equal(t, []string{"sh", "-c", "exit 3"}, cfg.Command)

	opt, _, err = runFlags(nil)
	require.NoError(t, err)
	cfg = opt.cfg
	require.Equal(t, 1, cfg.CPUs)
	require.EqualValues(t, 128<<20, cfg.Memory)
	require.Empty(t, cfg.Command)
	require.Equal(t, "vmlinux", filepath.Base(cfg.Kernel))
	require.Equal(t, "initramfs.cpio", filepath.Base(cfg.Initrd))

	opt, _, err = runFlags([]string{"--print-cmdline", "--vsock", "3,/tmp/v", "--no-rng"})
	require.NoError(t, err)
	cfg = opt.cfg
	require.True(t, cfg.PrintCmdline)
	require.True(t, cfg.NoRNG)
	require.Equal(t, &config.Vsock{CID: 3, Path: "/tmp/v"}, cfg.Vsock)

	t.Setenv("KILN_KERNEL", "/k/bzImage")
	opt, _, _ = runFlags(nil)
	require.Equal(t, "/k/bzImage", opt.cfg.Kernel)
}

func TestRunFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--cpus", "two"},
		{"--memory", "lots"},
		{"--memory", "-5M"},
		{"stray"},
		{"--"},
	} {
		_, _, err := runFlags(args)
		require.ErrorIs(t, err, config.ErrUsage, "%q", args)
	}
}

func TestExitCodesForBadInputWithoutBooting(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinux")
	require.NoError(t, os.WriteFile(kernel, []byte("not a kernel"), 0o644))
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"run", "--bogus"}, ExitUsage},
		{[]string{"run", "--kernel", kernel, "--cpus", "0"}, ExitUsage},
		{[]string{"run", "--kernel", kernel, "--cpus", "1000"}, ExitUsage},
		{[]string{"run", "--kernel", kernel, "--memory", "8M"}, ExitUsage},
		{[]string{"run", "--kernel", kernel, "--memory", "100T"}, ExitUsage},
		{[]string{"run", "--kernel", filepath.Join(dir, "missing")}, ExitNoInput},
		{[]string{"run", "--kernel", kernel, "--initrd", filepath.Join(dir, "missing")}, ExitNoInput},
		{[]string{"run", "--kernel", dir}, ExitNoInput},
		{[]string{"run", "--kernel", kernel, "--initrd", "/dev/null"}, ExitNoInput},
		{[]string{"frobnicate"}, ExitUsage},
		{nil, ExitUsage},
	} {
		require.Equal(t, c.code, Main(c.args, timeNow()), "%q", c.args)
	}
	require.Equal(t, 0, Main([]string{"version"}, timeNow()))
	require.Equal(t, 0, Main([]string{"run", "--help"}, timeNow()))
}

func TestMissingKVMDevice(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinux")
	require.NoError(t, os.WriteFile(kernel, []byte("k"), 0o644))
	t.Setenv("KILN_KVM", filepath.Join(dir, "no-kvm"))
	require.Equal(t, ExitNoKVM, Main([]string{"run", "--kernel", kernel, "--initrd", ""}, timeNow()))
	// A device that is not KVM.
	t.Setenv("KILN_KVM", "/dev/null")
	require.Equal(t, ExitNoKVM, Main([]string{"run", "--kernel", kernel, "--initrd", ""}, timeNow()))
}

func timeNow() time.Time { return time.Now() }

// TestSettingErrorsNameFlags: the VMM core names a setting; the command
// line says which flag set it.
func TestSettingErrorsNameFlags(t *testing.T) {
	err := &config.SettingError{Setting: "cpus", Value: "65", Problem: "is out of range (1 to 64)", Max: 64}
	require.ErrorIs(t, err, config.ErrUsage)
	out := captureStderr(t, func() { require.Equal(t, ExitUsage, fail(err)) })
	require.Contains(t, out, "kiln: --cpus 65 is out of range (1 to 64)\n")
}

// captureStderr returns what f writes to stderr.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stderr
	os.Stderr = w
	f()
	os.Stderr = old
	w.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}

// TestSeccompFlags: the filters are on unless --no-seccomp, and
// KILN_SECCOMP=log only logs.
func TestSeccompFlags(t *testing.T) {
	opt, _, err := runFlags(nil)
	require.NoError(t, err)
	require.Equal(t, seccomp.On, opt.seccomp)
	opt, _, err = runFlags([]string{"--no-seccomp"})
	require.NoError(t, err)
	require.Equal(t, seccomp.Off, opt.seccomp)
	s, _, _, err := snapshotFlags([]string{"--out", "d", "--no-seccomp"})
	require.NoError(t, err)
	require.Equal(t, seccomp.Off, s.seccomp)
	t.Setenv("KILN_SECCOMP", "log")
	opt, _, err = runFlags(nil)
	require.NoError(t, err)
	require.Equal(t, seccomp.Log, opt.seccomp)
}
