package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

func TestTranslateHooks(t *testing.T) {
	h, err := translateHooks(&specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/true"}}, Poststop: []specs.Hook{{Path: "/bin/true"}}})
	require.NoError(t, err)
	require.Len(t, h.Prestart, 1)
	require.Len(t, h.Poststop, 1)
	h, err = translateHooks(&specs.Hooks{})
	require.NoError(t, err)
	require.Nil(t, h, "no hooks")

	_, err = translateHooks(&specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/true"}}})
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = translateHooks(&specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}})
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = translateHooks(&specs.Hooks{Poststart: []specs.Hook{{Path: "true"}}})
	require.ErrorIs(t, err, ErrBadBundle)
	zero := 0
	_, err = translateHooks(&specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/true", Timeout: &zero}}})
	require.ErrorIs(t, err, ErrBadBundle)
}

func TestRunHooks(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	st := specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreated, Pid: 42, Bundle: "/b"}
	// The hook gets the state on stdin, its own args (args[0] included)
	// and only its own env.
	hooks := []specs.Hook{
		{Path: "/bin/sh", Args: []string{"sh", "-c", `cat > "$OUT.json"; echo "$0 $1 ${HOME:-nohome}" > "$OUT.args"`, "name", "arg1"}, Env: []string{"OUT=" + out}},
		{Path: "/bin/sh", Args: []string{"sh", "-c", `touch "$OUT.second"`}, Env: []string{"OUT=" + out}},
	}
	require.NoError(t, runHooks("prestart", hooks, st))
	data, err := os.ReadFile(out + ".json")
	require.NoError(t, err)
	var got specs.State
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, st, got)
	args, err := os.ReadFile(out + ".args")
	require.NoError(t, err)
	require.Equal(t, "name arg1 nohome\n", string(args))
	require.FileExists(t, out+".second")

	// A failure names the hook and says what it printed; the hooks after
	// it do not run.
	fail := []specs.Hook{
		{Path: "/bin/sh", Args: []string{"sh", "-c", "echo no such thing >&2; exit 3"}},
		{Path: "/bin/sh", Args: []string{"sh", "-c", `touch "$OUT.after"`}, Env: []string{"OUT=" + out}},
	}
	err = runHooks("poststart", fail, st)
	require.ErrorContains(t, err, "poststart hook 0 (/bin/sh): exit status 3: no such thing")
	require.NoFileExists(t, out+".after")

	one := 1
	err = runHooks("prestart", []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 30"}, Timeout: &one}}, st)
	require.ErrorContains(t, err, "killed after its timeout of 1 s")
	require.Error(t, runHooks("prestart", []specs.Hook{{Path: filepath.Join(dir, "missing")}}, st))
}
