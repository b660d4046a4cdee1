package oci

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

// TestMakeMountpoints: a restore makes the mount points the guest made in
// the root file system (a file for a bind of a file, a directory for the
// rest), but none below another mount, and none through a symlink out of
// the root.
func TestMakeMountpoints(t *testing.T) {
	rootfs, host := t.TempDir(), t.TempDir()
	hostFile := filepath.Join(host, "containerenv")
	require.NoError(t, os.WriteFile(hostFile, nil, 0o644))
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(rootfs, "escape")))
	require.NoError(t, os.Mkdir(filepath.Join(rootfs, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "etc", "hosts"), []byte("kept"), 0o644))
	b := &Bundle{Rootfs: rootfs, Spec: &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts"},
		{Destination: "/run/.containerenv", Type: "bind", Source: hostFile, Options: []string{"rbind"}},
		{Destination: "/data", Source: host, Options: []string{"bind"}},
		{Destination: "/etc/hosts", Type: "bind", Source: hostFile},
		{Destination: "/escape/x", Type: "bind", Source: hostFile},
	}}}
	err := makeMountpoints(b)
	require.Error(t, err, "a mount point through a symlink out of the root is refused")
	st, err := os.Stat(filepath.Join(rootfs, "run", ".containerenv"))
	require.NoError(t, err)
	require.True(t, st.Mode().IsRegular())
	for _, d := range []string{"dev", "data"} {
		st, err := os.Stat(filepath.Join(rootfs, d))
		require.NoError(t, err)
		require.True(t, st.IsDir(), d)
	}
	require.NoDirExists(t, filepath.Join(rootfs, "dev", "pts"), "inside the /dev mount, not the root file system")
	b2, _ := os.ReadFile(filepath.Join(rootfs, "etc", "hosts"))
	require.Equal(t, "kept", string(b2), "an existing file is left as it is")
	entries, _ := os.ReadDir(outside)
	require.Empty(t, entries, "nothing made outside the root")
}

// TestCheckpointRecord: a checkpoint's directory is a snapshot with the
// checkpoint's record beside it; one without the record is no checkpoint,
// and incremental dumps are refused before any container is looked at.
func TestCheckpointRecord(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadCheckpoint(dir)
	require.ErrorContains(t, err, "holds no kiln checkpoint (no kiln-checkpoint.json)")
	rec := `{"id":"c1","pid":7,"terminal":true,"taken":"2026-12-04T20:00:00Z"}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, CheckpointFile), []byte(rec), 0o600))
	c, err := ReadCheckpoint(dir)
	require.NoError(t, err)
	require.Equal(t, Checkpoint{ID: "c1", Pid: 7, Terminal: true, Taken: c.Taken}, *c)
	require.NoError(t, os.WriteFile(filepath.Join(dir, CheckpointFile), []byte("{"), 0o600))
	_, err = ReadCheckpoint(dir)
	require.Error(t, err)

	r := &Runtime{Store: Store{Root: t.TempDir()}}
	err = r.Checkpoint(CheckpointOptions{ID: "none", PreDump: true})
	require.ErrorIs(t, err, ErrUnsupported)
	err = r.Checkpoint(CheckpointOptions{ID: "none", ImagePath: dir})
	require.Error(t, err, "no such container")
}

// TestCheckpointKeepsOtherFiles: a checkpoint replaces its image path, so
// one that holds other files is refused before any container is looked
// at; an empty one, a new one and an earlier checkpoint's are taken.
func TestCheckpointKeepsOtherFiles(t *testing.T) {
	busy := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(busy, "precious"), []byte("x"), 0o644))
	r := &Runtime{Store: Store{Root: t.TempDir()}}
	err := r.Checkpoint(CheckpointOptions{ID: "none", ImagePath: busy})
	require.ErrorContains(t, err, "is not empty and holds no kiln checkpoint")
	require.FileExists(t, filepath.Join(busy, "precious"))

	earlier := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(earlier, CheckpointFile), []byte("{}"), 0o600))
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "new"), earlier} {
		require.NoError(t, replaceable(dir), dir)
	}
}
