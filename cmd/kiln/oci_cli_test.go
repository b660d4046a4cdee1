package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

// The OCI command line without KVM: parsing, and every error that comes
// before a VM is built, which must leave no state behind.

func TestIsOCIRun(t *testing.T) {
	for _, c := range []struct {
		args []string
		oci  bool
	}{
		{[]string{"c1"}, true},
		{[]string{"--bundle", "b", "c1"}, true},
		{[]string{"-b", "b", "-d", "c1"}, true},
		{[]string{"--pid-file=p", "c1"}, true},
		{nil, false},
		{[]string{"--", "echo", "hi"}, false},
		{[]string{"--cpus", "2", "--", "echo", "--bundle"}, false},
		{[]string{"--warm"}, false},
	} {
		require.Equal(t, c.oci, isOCIRun(c.args), "%q", c.args)
	}
}

// ociMain runs kiln with args and returns its exit code, stdout and
// stderr.
func ociMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var code int
	var stdout string
	stderr := captureStderr(t, func() {
		stdout = captureStdout(t, func() { code = Main(args, timeNow()) })
	})
	return code, stdout, stderr
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stdout
	os.Stdout = w
	f()
	os.Stdout = old
	w.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}

// requireOneLineError checks a failed OCI command: exit code 1, one line
// on stderr starting with "kiln:" and holding want.
func requireOneLineError(t *testing.T, code int, stderr, want string) {
	t.Helper()
	require.Equal(t, 1, code, "stderr: %s", stderr)
	require.True(t, strings.HasPrefix(stderr, "kiln: "), "stderr: %q", stderr)
	require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	require.Contains(t, stderr, want)
}

func TestOCIBadBundles(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "state")
	logPath := filepath.Join(dir, "log.json")
	kernel := filepath.Join(dir, "vmlinux")
	require.NoError(t, os.WriteFile(kernel, []byte("k"), 0o644))
	global := []string{"--root", root, "--log", logPath, "--log-format", "json", "--kernel", kernel, "--initrd", kernel}

	bundle := func(name, config string, rootfs bool) string {
		b := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(b, 0o755))
		if config != "" {
			require.NoError(t, os.WriteFile(filepath.Join(b, "config.json"), []byte(config), 0o644))
		}
		if rootfs {
			require.NoError(t, os.Mkdir(filepath.Join(b, "rootfs"), 0o755))
		}
		return b
	}
	good := `{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["true"],"cwd":"/"}}`
	for _, c := range []struct {
		name, bundle, want string
	}{
		{"missing config.json", bundle("none", "", true), "config.json: no such file or directory"},
		{"bad JSON", bundle("badjson", "{not json", true), "config.json is not valid"},
		{"missing rootfs", bundle("norootfs", good, false), "root file system"},
		{"no process", bundle("noproc", `{"ociVersion":"1.0.2","root":{"path":"rootfs"}}`, true), "no process"},
		{"a user namespace", bundle("userns", `{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["true"],"cwd":"/"},"linux":{"namespaces":[{"type":"user"}]}}`, true), "user namespace"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pid := filepath.Join(dir, c.name+".pid")
			code, _, stderr := ociMain(t, append(global, "create", "--bundle", c.bundle, "--pid-file", pid, "c1")...)
			requireOneLineError(t, code, stderr, c.want)
			require.NoFileExists(t, pid)
			require.NoDirExists(t, filepath.Join(root, "c1"), "no state left behind")
		})
	}

	t.Run("missing kernel", func(t *testing.T) {
		code, _, stderr := ociMain(t, "--root", root, "--kernel", filepath.Join(dir, "nope"), "create", "--bundle", bundle("ok", good, true), "c1")
		requireOneLineError(t, code, stderr, "guest kernel")
		require.NoDirExists(t, filepath.Join(root, "c1"))
	})

	t.Run("the error in the log", func(t *testing.T) {
		b, err := os.ReadFile(logPath)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		var e struct{ Level, Msg, Time string }
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &e), lines[0])
		require.Equal(t, "error", e.Level)
		require.Contains(t, e.Msg, "config.json")
	})

	t.Run("unknown ID", func(t *testing.T) {
		for _, cmd := range [][]string{{"state", "nope"}, {"start", "nope"}, {"kill", "nope", "9"}, {"delete", "nope"}, {"ps", "nope"}, {"pause", "nope"}, {"resume", "nope"}} {
			code, _, stderr := ociMain(t, append([]string{"--root", root}, cmd...)...)
			requireOneLineError(t, code, stderr, "does not exist")
		}
		code, _, stderr := ociMain(t, "--root", root, "delete", "--force", "nope")
		require.Equal(t, 0, code, "delete --force of an unknown ID succeeds, as runc's: %s", stderr)
	})

	t.Run("duplicate ID", func(t *testing.T) {
		c, err := oci.Store{Root: root}.Create("dup", "/b", "/b/rootfs", nil)
		require.NoError(t, err)
		c.Unlock()
		code, _, stderr := ociMain(t, append(global, "create", "--bundle", bundle("dup", good, true), "dup")...)
		requireOneLineError(t, code, stderr, "already exists")
		require.FileExists(t, filepath.Join(root, "dup", "state.json"), "the first container's state is untouched")
	})

	t.Run("bad arguments", func(t *testing.T) {
		for _, args := range [][]string{
			{"create"}, {"start"}, {"kill", "a", "b", "c"}, {"kill", "a", "SIGNOPE"},
			{"create", "--bogus", "c1"}, {"create", "../x"}, {"--bogus-global", "state", "x"},
		} {
			code, _, stderr := ociMain(t, append([]string{"--root", root}, args...)...)
			requireOneLineError(t, code, stderr, "")
		}
	})
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the duplicate test's own state")
}

func TestOCIGlobalFlagsAndFeatures(t *testing.T) {
	root := t.TempDir()
	// What containerd passes on every call, and podman with JSON.
	code, _, stderr := ociMain(t, "--root", root, "--log", filepath.Join(root, "log"), "--log-format=json", "--systemd-cgroup", "--debug", "delete", "--force", "x")
	require.Equal(t, 0, code, stderr)

	code, stdout, stderr := ociMain(t, "features")
	require.Equal(t, 0, code, stderr)
	var f struct {
		OCIVersionMax string `json:"ociVersionMax"`
		Linux         struct {
			Namespaces []string `json:"namespaces"`
		} `json:"linux"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &f), stdout)
	require.True(t, strings.HasPrefix(f.OCIVersionMax, "1."))
	require.Contains(t, f.Linux.Namespaces, "mount")
}

// TestOCICommandsHaveHelp: every OCI command's --help prints its usage on
// stdout and exits 0, as runc's does.
func TestOCICommandsHaveHelp(t *testing.T) {
	for name := range ociCommands {
		if name == "run" {
			continue // kiln run --help is kiln's own run (the VM); its OCI form is in kiln --help
		}
		code, stdout, stderr := ociMain(t, name, "--help")
		require.Equal(t, 0, code, "%s --help: %s", name, stderr)
		require.True(t, strings.HasPrefix(stdout, "Usage: kiln [global flags] "+name), "%s --help: %q", name, stdout)
		require.Contains(t, stdout, "--help")
		require.Empty(t, stderr)
	}
}

func TestOCISpecListUpdateEvents(t *testing.T) {
	root, bundle := t.TempDir(), t.TempDir()
	code, _, stderr := ociMain(t, "spec", "--bundle", bundle)
	require.Equal(t, 0, code, stderr)
	require.NoError(t, os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755))
	b, err := oci.LoadBundle(bundle)
	require.NoError(t, err, "kiln spec writes a bundle kiln can load")
	require.Equal(t, []string{"sh"}, b.Spec.Process.Args)
	code, _, stderr = ociMain(t, "spec", "--bundle", bundle)
	requireOneLineError(t, code, stderr, "exists")

	code, stdout, stderr := ociMain(t, "--root", root, "list", "--format", "json")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "[]\n", stdout)
	code, stdout, _ = ociMain(t, "--root", root, "list")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(stdout, "ID"), stdout)

	code, _, stderr = ociMain(t, "--root", root, "update", "--memory", "512m", "nope")
	requireOneLineError(t, code, stderr, "does not exist")
	code, _, stderr = ociMain(t, "--root", root, "events", "--stats", "nope")
	requireOneLineError(t, code, stderr, "does not exist")
}

// TestOCIPauseRefusals: pause of a container that is not running, and
// resume of one that is not paused, are one line and exit code
// ExitWrongState, before any VMM is asked.
func TestOCIPauseRefusals(t *testing.T) {
	root := t.TempDir()
	c, err := oci.Store{Root: root}.Create("gone", "/b", "/b/rootfs", nil)
	require.NoError(t, err)
	c.Pid, c.PidStart, c.Creator = 1<<30, 1, 0 // a VMM that is no more: stopped
	require.NoError(t, c.Save())
	c.Unlock()
	for _, cmd := range []string{"pause", "resume"} {
		code, _, stderr := ociMain(t, "--root", root, cmd, "gone")
		require.Equal(t, ExitWrongState, code, stderr)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		require.Contains(t, stderr, cmd+" gone: container not ")
		require.Contains(t, stderr, "(it is stopped)")
	}
	code, _, stderr := ociMain(t, "--root", root, "pause", "a", "b")
	requireOneLineError(t, code, stderr, "pause takes a container ID")
}

// TestOCIExecRefusals: kiln exec's errors before any guest: one line each.
func TestOCIExecRefusals(t *testing.T) {
	root := t.TempDir()
	for _, args := range [][]string{
		{"exec"},                                // no ID
		{"exec", "nope", "echo", "hi"},          // no such container
		{"exec", "--user", "root", "nope", "x"}, // no such container comes first
		{"exec", "--bogus", "nope"},             // unknown flag
	} {
		code, _, stderr := ociMain(t, append([]string{"--root", root}, args...)...)
		requireOneLineError(t, code, stderr, "")
	}
}
