package vmflags

import (
	"errors"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

func parse(t *testing.T, args ...string) (*pflag.FlagSet, *config.Config, *VM, error) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	cfg := &config.Config{}
	v := Add(fs, cfg)
	require.NoError(t, fs.Parse(args))
	return fs, cfg, v, v.Parse()
}

func TestParse(t *testing.T) {
	fs, cfg, v, err := parse(t, "--memory", "256M", "--cpus", "2", "--vsock", "3,/tmp/v.sock", "--no-seccomp", "--", "echo", "hi")
	require.NoError(t, err)
	require.Equal(t, uint64(256<<20), cfg.Memory)
	require.Equal(t, 2, cfg.CPUs)
	require.NotNil(t, cfg.Vsock)
	require.Equal(t, seccomp.Off, v.Seccomp())
	cmd, err := Command(fs)
	require.NoError(t, err)
	require.Equal(t, []string{"echo", "hi"}, cmd)
	require.Equal(t, "cpus", Changed(fs, Hardware), "the first hardware flag given, in Hardware's order")
	require.Equal(t, "", Changed(fs, []string{"disk"}))
}

func TestParseRefusals(t *testing.T) {
	_, _, _, err := parse(t, "--memory", "lots")
	require.Error(t, err)
	for _, args := range [][]string{{"stray"}, {"stray", "--", "x"}, {"--"}} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		Add(fs, &config.Config{})
		require.NoError(t, fs.Parse(args))
		_, err := Command(fs)
		require.True(t, errors.Is(err, config.ErrUsage), "%v: %v", args, err)
	}
}
