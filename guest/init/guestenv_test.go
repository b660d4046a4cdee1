package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithGuestEnv(t *testing.T) {
	saved := guestEnv
	t.Cleanup(func() { guestEnv = saved })

	guestEnv = map[string]string{}
	require.Equal(t, []string{"A=B"}, withGuestEnv([]string{"A=B"}), "no guest-wide variables: the environment as it is")

	guestEnv = map[string]string{"GODEBUG": "cpu.avx=off", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX"}
	require.Equal(t, []string{"PATH=/bin", "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX", "GODEBUG=cpu.avx=off"},
		withGuestEnv([]string{"PATH=/bin"}), "added when the process has none")
	require.Equal(t, []string{"GODEBUG=cpu.avx=off,gctrace=1", "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX:glibc.malloc.check=3"},
		withGuestEnv([]string{"GODEBUG=gctrace=1", "GLIBC_TUNABLES=glibc.malloc.check=3"}),
		"the process's own settings follow the guest's, so they win")
	require.Equal(t, []string{"GODEBUG=cpu.avx=off,gctrace=1", "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX"},
		withGuestEnv(withGuestEnv([]string{"GODEBUG=gctrace=1"})), "merging twice changes nothing")
	require.Equal(t, []string{"GODEBUG=cpu.avx=off", "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX"},
		withGuestEnv([]string{"GODEBUG="}), "an empty value takes the guest's")
}
