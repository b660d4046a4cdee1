package main

// OCI hooks on the host around a real guest: prestart and createRuntime
// in create, poststart in start, poststop in delete, each with the
// container's state on its stdin (cmd/kiln/oci/hooks.go).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

// stateHook is a hook that writes its stdin to dir/name.
func stateHook(dir, name string) specs.Hook {
	return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `cat > "$DIR/$NAME"`}, Env: []string{"DIR=" + dir, "NAME=" + name}}
}

func TestOCIHooks(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	dir := t.TempDir()
	b := writeBundle(t, rootfs, "true")
	fail := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo the hook says no >&2; exit 7"}}
	editBundle(t, b, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			Prestart:      []specs.Hook{stateHook(dir, "prestart")},
			CreateRuntime: []specs.Hook{stateHook(dir, "createRuntime")},
			Poststart:     []specs.Hook{stateHook(dir, "poststart"), fail},
			Poststop:      []specs.Hook{stateHook(dir, "poststop")},
		}
	})
	o := newOCIRuntime(t, "")
	logPath := filepath.Join(t.TempDir(), "log")
	cmd := o.create("h1", b)
	cmd.Args = append([]string{cmd.Args[0], "--log", logPath}, cmd.Args[1:]...)
	if err := cmd.Run(); err != nil {
		out, errs := o.output("h1")
		t.Fatalf("create: %v: %s %s", err, out, errs)
	}
	pid := o.pid("h1")
	t.Cleanup(func() { o.run("delete", "--force", "h1") })
	read := func(name string) specs.State {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, "the %s hook ran", name)
		var st specs.State
		require.NoError(t, json.Unmarshal(data, &st), "%s got the state: %s", name, data)
		return st
	}
	for _, name := range []string{"prestart", "createRuntime"} {
		st := read(name)
		require.Equal(t, "h1", st.ID)
		require.Equal(t, specs.StateCreated, st.Status)
		require.Equal(t, pid, st.Pid)
		require.Equal(t, b, st.Bundle)
	}
	require.NoFileExists(t, filepath.Join(dir, "poststart"), "not before start")

	// A failed poststart hook is a warning: the container runs on.
	r := o.run("--log", logPath, "start", "h1")
	require.Equal(t, 0, r.code, r.stderr)
	st := read("poststart")
	require.Equal(t, pid, st.Pid)
	require.Contains(t, []specs.ContainerState{specs.StateRunning, specs.StateStopped}, st.Status)
	require.Equal(t, 0, waitExit(t, pid))
	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.Contains(t, string(log), "poststart hook 1 (/bin/sh): exit status 7: the hook says no")
	require.NoFileExists(t, filepath.Join(dir, "poststop"), "not before delete")
	r = o.run("delete", "h1")
	require.Equal(t, 0, r.code, r.stderr)
	o.requireGone("h1", pid)
	st = read("poststop")
	require.Equal(t, specs.StateStopped, st.Status)
	require.Equal(t, "h1", st.ID)

	// A failed prestart hook fails create with one line, and leaves no
	// container and no VMM; the poststop hooks run.
	require.NoError(t, os.Remove(filepath.Join(dir, "poststop")))
	editBundle(t, b, func(s *specs.Spec) { s.Hooks.Prestart = []specs.Hook{fail} })
	cmd = o.create("h2", b)
	err = cmd.Run()
	require.Error(t, err)
	_, errs := o.output("h2")
	require.Contains(t, errs, "prestart hook 0 (/bin/sh): exit status 7: the hook says no")
	require.Equal(t, 1, len(strings.Split(strings.TrimSpace(errs), "\n")), "one line: %q", errs)
	r = o.run("state", "h2")
	require.NotEqual(t, 0, r.code)
	require.Contains(t, r.stderr, "does not exist")
	require.Equal(t, specs.StateStopped, read("poststop").Status)
}
