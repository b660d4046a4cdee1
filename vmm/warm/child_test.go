package warm

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/ipc"
	"github.com/kiln-vmm/kiln/vmm/seccomp"
)

// fakeKiln writes a script that plays `kiln _snapshot`: it saves its
// request, says something on stderr, and does what body says.
func fakeKiln(t *testing.T, body string) (exe, request string) {
	dir := t.TempDir()
	request = filepath.Join(dir, "request")
	exe = filepath.Join(dir, "kiln")
	script := "#!/bin/sh\n[ \"$1\" = _snapshot ] || exit 99\ncat > " + request + "\necho booting >&2\n" + body + "\n"
	require.NoError(t, os.WriteFile(exe, []byte(script), 0o755))
	return exe, request
}

func TestChildTakes(t *testing.T) {
	exe, request := fakeKiln(t, `echo '{}' >&3`)
	var stderr bytes.Buffer
	c := &Child{Exe: exe, Stderr: &stderr, Seccomp: seccomp.On}
	shape := config.Shape{Kernel: "/k", CPUs: 2, Memory: 64 << 20, Shares: []config.Share{{HostDir: "/h", Tag: "kiln0"}}}
	require.NoError(t, c.Take(shape, "/snap"))
	require.Equal(t, "booting\n", stderr.String())
	f, err := os.Open(request)
	require.NoError(t, err)
	defer f.Close()
	var req ipc.SnapshotRequest
	require.NoError(t, ipc.Read(f, &req))
	require.Equal(t, ipc.SnapshotRequest{Shape: shape, Dir: "/snap", Seccomp: seccomp.On}, req, "the child gets the shape whole")
}

func TestChildSaysWhy(t *testing.T) {
	exe, _ := fakeKiln(t, `echo '{"error":"kernel: not a Linux kernel","code":65}' >&3; exit 65`)
	c := &Child{Exe: exe, Stderr: &bytes.Buffer{}}
	err := c.Take(config.Shape{}, "/snap")
	var f *ipc.Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, 65, f.Code)
	require.Equal(t, "take the warm snapshot: kernel: not a Linux kernel", err.Error())
}

func TestChildThatDiesSilently(t *testing.T) {
	exe, _ := fakeKiln(t, `kill -9 $$`)
	c := &Child{Exe: exe, Stderr: &bytes.Buffer{}}
	err := c.Take(config.Shape{}, "/snap")
	var f *ipc.Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, 137, f.Code)
	require.Contains(t, err.Error(), "the snapshot child ended")
}
