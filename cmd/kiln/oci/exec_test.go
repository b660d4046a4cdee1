package oci

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/guest/contract"
)

func testContainer() *contract.Container {
	umask := uint32(0o027)
	return &contract.Container{
		Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin", "HOME=/root"}, Cwd: "/srv",
		User:         contract.ContainerUser{UID: 5, GID: 6, AdditionalGIDs: []uint32{7}, Umask: &umask},
		Capabilities: &contract.Capabilities{Bounding: []int{0, 1}}, NoNewPrivileges: true,
	}
}

func TestExecSpecFromTheContainer(t *testing.T) {
	c := testContainer()
	e, err := ExecSpec(c, &ExecOptions{Args: []string{"echo", "hi"}})
	require.NoError(t, err)
	require.Equal(t, []string{"echo", "hi"}, e.Args)
	require.Equal(t, c.Env, e.Env)
	require.Equal(t, "/srv", e.Cwd)
	require.Equal(t, c.User, e.User)
	require.Equal(t, c.Capabilities, e.Capabilities)
	require.True(t, e.NoNewPrivileges)
	require.False(t, e.Terminal)
	require.Len(t, e.ID, 16)
	e2, err := ExecSpec(c, &ExecOptions{Args: []string{"true"}})
	require.NoError(t, err)
	require.NotEqual(t, e.ID, e2.ID, "every exec has an ID of its own")
}

func TestExecSpecFlags(t *testing.T) {
	c := testContainer()
	e, err := ExecSpec(c, &ExecOptions{
		Args: []string{"sh"}, Tty: true, Cwd: "/tmp", Env: []string{"HOME=/tmp", "FOO=a=b"},
		User: "1000:1001", Caps: []string{"cap_kill", "CAP_NET_RAW"},
	})
	require.NoError(t, err)
	require.True(t, e.Terminal)
	require.Equal(t, "/tmp", e.Cwd)
	require.Equal(t, []string{"PATH=/bin", "HOME=/tmp", "FOO=a=b"}, e.Env)
	require.Equal(t, []string{"PATH=/bin", "HOME=/root"}, c.Env, "the container's environment is not changed")
	require.Equal(t, uint32(1000), e.User.UID)
	require.Equal(t, uint32(1001), e.User.GID)
	require.Empty(t, e.User.AdditionalGIDs, "--user is the whole identity")
	require.Equal(t, []int{0, 1, 5, 13}, e.Capabilities.Bounding)
	require.Subset(t, e.Capabilities.Permitted, []int{5, 13}, "--cap adds to the permitted set too")
	require.Subset(t, e.Capabilities.Effective, []int{5, 13})
	require.Equal(t, []int{0, 1}, c.Capabilities.Bounding)

	e, err = ExecSpec(c, &ExecOptions{Args: []string{"id"}, User: "42"})
	require.NoError(t, err)
	require.Equal(t, uint32(42), e.User.UID)
	require.Equal(t, uint32(0), e.User.GID)
}

func TestExecSpecProcessFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "p.json")
	require.NoError(t, os.WriteFile(f, []byte(`{"terminal":true,"args":["sh","-c","x"],"env":["A=1"],"cwd":"/w",
		"user":{"uid":3,"gid":4,"additionalGids":[9]},"noNewPrivileges":false,
		"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_ADMIN","CAP_NOPE"],"effective":["CAP_CHOWN"],
		"permitted":["CAP_CHOWN"],"inheritable":["CAP_SYS_ADMIN"],"ambient":["CAP_SYS_ADMIN"]}}`), 0o644))
	e, err := ExecSpec(testContainer(), &ExecOptions{Process: f})
	require.NoError(t, err)
	require.Equal(t, []string{"sh", "-c", "x"}, e.Args)
	require.Equal(t, []string{"A=1"}, e.Env, "the file's environment is the whole environment")
	require.Equal(t, "/w", e.Cwd)
	require.True(t, e.Terminal)
	require.Equal(t, contract.ContainerUser{UID: 3, GID: 4, AdditionalGIDs: []uint32{9}}, e.User)
	require.False(t, e.NoNewPrivileges)
	require.Equal(t, &contract.Capabilities{Bounding: []int{0, 21}, Effective: []int{0}, Permitted: []int{0},
		Inheritable: []int{21}, Ambient: []int{21}}, e.Capabilities, "all five sets; unknown names are skipped as runc warns")
}

func TestExecSpecRefusals(t *testing.T) {
	c := testContainer()
	missing := filepath.Join(t.TempDir(), "none.json")
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte("{"), 0o644))
	for name, o := range map[string]ExecOptions{
		"no command":    {},
		"relative cwd":  {Args: []string{"x"}, Cwd: "tmp"},
		"env":           {Args: []string{"x"}, Env: []string{"NOEQUALS"}},
		"empty env key": {Args: []string{"x"}, Env: []string{"=v"}},
		"user name":     {Args: []string{"x"}, User: "root"},
		"bad gid":       {Args: []string{"x"}, User: "0:wheel"},
		"unknown cap":   {Args: []string{"x"}, Caps: []string{"CAP_FLY"}},
		"missing file":  {Process: missing},
		"bad file":      {Process: bad},
	} {
		_, err := ExecSpec(c, &o)
		require.Error(t, err, name)
		require.Contains(t, err.Error(), "exec:", name)
	}
}
