package config

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/guest/contract"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"512M": 512 << 20, "512m": 512 << 20, "512MiB": 512 << 20, "512MB": 512 << 20,
		"2G": 2 << 30, "1T": 1 << 40, "65536K": 64 << 20, "256": 256 << 20, " 128M ": 128 << 20,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "M", "-1M", "1.5G", "12X", "0", "0M", "99999999999999999999", "16777216T"} {
		_, err := ParseSize(in)
		require.ErrorIs(t, err, ErrUsage, in)
	}
}

func TestFormatSize(t *testing.T) {
	require.Equal(t, "512M", FormatSize(512<<20))
	require.Equal(t, "2G", FormatSize(2<<30))
	require.Equal(t, "1536M", FormatSize(1536<<20))
	require.Equal(t, "100B", FormatSize(100))
}

func validConfig(t *testing.T) *Config {
	k := filepath.Join(t.TempDir(), "vmlinux")
	require.NoError(t, os.WriteFile(k, []byte("kernel"), 0o644))
	return &Config{Shape: Shape{Kernel: k, CPUs: 1, Memory: 256 << 20}}
}

func TestValidate(t *testing.T) {
	require.NoError(t, validConfig(t).Validate())
	for _, c := range []struct {
		name  string
		mod   func(c *Config)
		usage bool
		msg   string
	}{
		{"zero cpus", func(c *Config) { c.CPUs = 0 }, true, "cpus 0 is out of range"},
		{"too many cpus", func(c *Config) { c.CPUs = 65 }, true, "cpus 65 is out of range"},
		{"memory too small", func(c *Config) { c.Memory = 16 << 20 }, true, "too small"},
		{"memory too large", func(c *Config) { c.Memory = 2 << 40 }, true, "too large"},
		{"memory unaligned", func(c *Config) { c.Memory = 64<<20 + 1 }, true, "multiple of 4 KiB"},
		{"no kernel", func(c *Config) { c.Kernel = "" }, true, "no kernel"},
		{"missing kernel", func(c *Config) { c.Kernel = "/nonexistent/vmlinux" }, false, "no such file"},
		{"kernel is a directory", func(c *Config) { c.Kernel = os.TempDir() }, false, "not a regular file"},
		{"missing initrd", func(c *Config) { c.Initrd = "/nonexistent/initrd" }, false, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig(t)
			c.mod(cfg)
			err := cfg.Validate()
			require.ErrorContains(t, err, c.msg)
			if c.usage {
				require.ErrorIs(t, err, ErrUsage)
			} else {
				require.NotErrorIs(t, err, ErrUsage)
			}
		})
	}
}

func TestKernelCmdline(t *testing.T) {
	c := &Config{Interactive: true}
	hw := KernelCmdline(c, Host{}, nil)
	require.Equal(t, "console=ttyS0 8250.nr_uarts=1 reboot=k panic=-1", hw)

	c = &Config{Command: []string{"sh", "-c", "exit 3"}, Shape: Shape{Cmdline: "loglevel=8"}}
	pvm := KernelCmdline(c, Host{PVM: true, TSCKHz: 2596128}, []string{"virtio_mmio.device=4K@0xd0000000:5"})
	for _, want := range []string{"quiet", "clearcpuid=xsave,popcnt,smap", "rodata=off", "tsc_early_khz=2596128", "virtio_mmio.device=4K@0xd0000000:5"} {
		require.Contains(t, pvm, want)
	}
	for _, kv := range PVMGuestEnv {
		require.Contains(t, strings.Fields(pvm), kv, "the guest-wide environment is one parameter each")
		require.NotContains(t, hw, kv)
	}
	require.Contains(t, pvm, "GODEBUG=cpu.avx=off,")
	require.Less(t, len(pvm), 2048-256, "room on x86's 2048-byte command line for the devices and the user's arguments")
	require.NotContains(t, pvm, contract.ParamJob, "kiln's own guest reads its job from the signal device")
	require.True(t, strings.HasSuffix(pvm, " loglevel=8"), "user arguments come last: %s", pvm)

	// Another VMM gets the job on the command line, before the user's
	// arguments.
	foreign, err := ForeignCmdline(c, Host{}, nil)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(foreign, " loglevel=8"), foreign)
	var param string
	for _, f := range strings.Fields(foreign) {
		if v, ok := strings.CutPrefix(f, contract.ParamJob+"="); ok {
			param = v
		}
	}
	job, err := contract.DecodeJobParam(param)
	require.NoError(t, err)
	require.Equal(t, c.Command, job.Argv)
	require.True(t, job.Raw, "not interactive: a raw console")
	require.True(t, job.Quiet)

	c.Verbose = true
	require.NotContains(t, KernelCmdline(c, Host{}, nil), "quiet")
	require.NotContains(t, KernelCmdline(c, Host{}, nil), "clearcpuid")
}

func TestExitClasses(t *testing.T) {
	c, err := ParseExitClasses("io,HLT")
	require.NoError(t, err)
	require.Equal(t, ExitsIO|ExitsHLT, c)
	require.Equal(t, "io,hlt", c.String())
	c, err = ParseExitClasses("all")
	require.NoError(t, err)
	require.Equal(t, "all", c.String())
	require.Equal(t, "", ExitClass(0).String())
	_, err = ParseExitClasses("io,bogus")
	require.ErrorContains(t, err, `unknown trace class "bogus"`)
}

// TestConfigImportsNoVMM: a config is the first step of a boot, checked
// before anything is built, so it depends on no part of the VMM (the
// guest-host contract is shared with the guest, not part of it).
func TestConfigImportsNoVMM(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	require.NoError(t, err)
	for _, imp := range pkg.Imports {
		require.False(t, strings.HasPrefix(imp, "github.com/kiln-vmm/kiln/vmm/") || strings.HasPrefix(imp, "github.com/kiln-vmm/kiln/devices"),
			"vmm/config imports %s", imp)
	}
}
