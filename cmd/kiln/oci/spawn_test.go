package oci

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeVMMBinary writes a script that plays a container's VMM on the
// socket kiln create gives it (fd 3).
func fakeVMMBinary(t *testing.T, body string) string {
	exe := filepath.Join(t.TempDir(), "kiln")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return exe
}

func stdio(t *testing.T) []*os.File {
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return []*os.File{f, f, f}
}

func TestSpawnAdopts(t *testing.T) {
	done := filepath.Join(t.TempDir(), "adopted")
	exe := fakeVMMBinary(t, `echo '{}' >&3; read answer <&3 && echo "$answer" > `+done)
	s, err := Spawn(exe, []string{VMMCommand, "/state"}, stdio(t), false, false)
	require.NoError(t, err)
	require.NoError(t, s.Adopt())
	require.NoError(t, s.Cmd.Wait())
	b, err := os.ReadFile(done)
	require.NoError(t, err)
	require.Equal(t, "{}\n", string(b), "the VMM heard create's answer")
}

func TestSpawnGivesTheVMMsError(t *testing.T) {
	exe := fakeVMMBinary(t, `echo '{"error":"the guest kernel: not a Linux kernel"}' >&3; exit 1`)
	_, err := Spawn(exe, nil, stdio(t), false, false)
	require.EqualError(t, err, "the guest kernel: not a Linux kernel")
}

func TestSpawnOfAVMMThatDies(t *testing.T) {
	exe := fakeVMMBinary(t, `exit 3`)
	_, err := Spawn(exe, nil, stdio(t), false, false)
	require.ErrorContains(t, err, "the VMM process ended before the container was created (exit status 3)")
}

// TestSpawnedVMMSeesCreateGo: a VMM whose create dies before it answers
// sees its socket close (and ends its VM, in the real one).
func TestSpawnedVMMSeesCreateGo(t *testing.T) {
	seen := filepath.Join(t.TempDir(), "seen")
	exe := fakeVMMBinary(t, `echo '{}' >&3; read answer <&3 || echo closed > `+seen)
	s, err := Spawn(exe, nil, stdio(t), false, false)
	require.NoError(t, err)
	s.sock.Close() // what create's death does to its end
	require.NoError(t, s.Cmd.Wait())
	b, err := os.ReadFile(seen)
	require.NoError(t, err)
	require.Equal(t, "closed\n", string(b))
}
