package oci

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestStateLifecycle(t *testing.T) {
	s := Store{Root: filepath.Join(t.TempDir(), "root")}
	c, err := s.Create("c1", "/b", "/b/rootfs", map[string]string{"a": "b"})
	require.NoError(t, err)
	require.Equal(t, specs.StateCreating, c.Status(), "this process is creating it")

	_, err = s.Create("c1", "/b", "/b/rootfs", nil)
	require.ErrorIs(t, err, ErrExists)

	// The VMM: a process that lives until killed.
	cmd := exec.Command("sleep", "1000")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c.Pid = cmd.Process.Pid
	c.PidStart, _, err = ProcStart(c.Pid)
	require.NoError(t, err)
	c.Creator = 0
	require.NoError(t, c.Save())
	c.Unlock()

	read := func() *Container {
		c, err := s.Open("c1", false)
		require.NoError(t, err)
		return c
	}
	require.Equal(t, specs.StateCreated, read().Status())
	st := read().State()
	require.Equal(t, cmd.Process.Pid, st.Pid)
	require.Equal(t, "c1", st.ID)
	require.Equal(t, "/b", st.Bundle)
	require.Equal(t, specs.Version, st.Version)

	c, err = s.Open("c1", true)
	require.NoError(t, err)
	c.Started = true
	require.NoError(t, c.Save())
	c.Unlock()
	require.Equal(t, specs.StateRunning, read().Status())

	// Paused, while its VMM lives: the pid stays in the state.
	c, err = s.Open("c1", true)
	require.NoError(t, err)
	c.Paused = true
	require.NoError(t, c.Save())
	c.Unlock()
	require.Equal(t, StatePaused, read().Status())
	require.Equal(t, cmd.Process.Pid, read().State().Pid)
	// A second pause is refused before the VMM is asked, with an error
	// of its own, whose words are runc's.
	r := &Runtime{Store: s}
	var se *StateError
	require.ErrorAs(t, r.Pause("c1"), &se)
	require.EqualError(t, se, "pause c1: container not running (it is paused)")
	c, err = s.Open("c1", true)
	require.NoError(t, err)
	c.Paused = false
	require.NoError(t, c.Save())
	c.Unlock()
	require.ErrorAs(t, r.Resume("c1"), &se)
	require.EqualError(t, se, "resume c1: container not paused (it is running)")

	// State JSON as engines decode it: podman reads pid and status.
	b, err := json.Marshal(read().State())
	require.NoError(t, err)
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(b, &decoded))
	for _, k := range []string{"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"} {
		require.Contains(t, decoded, k)
	}
	require.Equal(t, "running", decoded["status"])

	// A zombie is stopped: its parent has not reaped it yet.
	require.NoError(t, cmd.Process.Signal(unix.SIGKILL))
	for read().Status() != specs.StateStopped {
		time.Sleep(time.Millisecond)
	}
	require.Zero(t, read().State().Pid, "no pid once stopped")
	cmd.Wait()

	// A recycled pid is not the container's.
	c = read()
	c.PidStart++
	require.Equal(t, specs.StateStopped, c.Status())

	c, err = s.Open("c1", true)
	require.NoError(t, err)
	require.NoError(t, c.Remove())
	_, err = s.Open("c1", false)
	require.ErrorIs(t, err, ErrNotExist)
	require.Contains(t, err.Error(), "does not exist", "the words engines look for")
}

func TestStateCreatorDied(t *testing.T) {
	s := Store{Root: t.TempDir()}
	c, err := s.Create("c2", "/b", "/b/rootfs", nil)
	require.NoError(t, err)
	c.Creator, c.CreatorStart = 1<<22+1, 1 // no such process
	require.NoError(t, c.Save())
	require.Equal(t, specs.StateStopped, c.Status())
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"c1", "9f17ccb81cc80a4fab2d4988043a76b6ec4b6e3ba048972229d6a5331891a9e1", "a.b-c_d+e"} {
		require.NoError(t, ValidID(id), id)
	}
	for _, id := range []string{"", ".", "..", "a/b", "../x", "a b", "a\nb"} {
		require.Error(t, ValidID(id), "%q", id)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{
		"": unix.SIGTERM, "15": unix.SIGTERM, "9": unix.SIGKILL, "SIGKILL": unix.SIGKILL,
		"kill": unix.SIGKILL, "HUP": unix.SIGHUP, "28": unix.SIGWINCH, "sigusr1": unix.SIGUSR1,
	} {
		got, err := ParseSignal(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"0", "65", "-1", "SIGNOPE", "1.5"} {
		_, err := ParseSignal(in)
		require.Error(t, err, in)
	}
}

func TestPidFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pidfile")
	require.NoError(t, WritePidFile(p, 22475))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "22475", string(b), "bare digits: containerd's shim reads it with Atoi")
}

func TestLogJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.json")
	l := Log{Path: p, Format: "json"}
	require.NoError(t, l.Error("kiln: first"))
	require.NoError(t, l.Error("kiln: second"))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 2)
	var e struct{ Level, Msg, Time string }
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &e))
	require.Equal(t, "error", e.Level)
	require.Equal(t, "kiln: second", e.Msg)
	require.NotEmpty(t, e.Time)
	require.NoError(t, Log{}.Error("nowhere"), "no --log: nothing to write")
}
