package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLaunchTimesMarkAndExit(t *testing.T) {
	var markedPID int
	l := launch{
		argv:    []string{"/bin/sh", "-c", "echo booting; sleep 0.2; echo MARK-here >&2; sleep 0.2; exit 3"},
		mark:    "MARK",
		onMark:  func(pid int) { markedPID = pid },
		timeout: 10 * time.Second,
	}
	o, err := l.run(context.Background())
	require.NoError(t, err)
	require.True(t, o.marked)
	require.NotZero(t, markedPID, "onMark runs while the process lives")
	require.GreaterOrEqual(t, o.mark, 200*time.Millisecond)
	require.GreaterOrEqual(t, o.exit, o.mark+200*time.Millisecond)
	require.Equal(t, 3, o.status)
	require.Contains(t, o.tail(), "MARK-here")
}

// TestLaunchReadsKilnReport: with report set, the program gets a pipe as
// fd 3; its "userspace" event is the mark and every event is kept.
func TestLaunchReadsKilnReport(t *testing.T) {
	var marked bool
	l := launch{
		argv: []string{"/bin/sh", "-c", `sleep 0.2; echo '{"event":"userspace","at_ns":5}' >&3; sleep 0.1; ` +
			`echo '{"event":"end","reason":"reset","exit_status":0,"phases":{"vmm_setup_ns":1,"kernel_ns":2,"init_ns":3,"command_ns":4,"total_ns":10}}' >&3`},
		report:  true,
		onMark:  func(int) { marked = true },
		timeout: 10 * time.Second,
	}
	o, err := l.run(context.Background())
	require.NoError(t, err)
	require.True(t, o.marked)
	require.True(t, marked)
	require.GreaterOrEqual(t, o.mark, 200*time.Millisecond)
	end, ok := o.end()
	require.True(t, ok)
	require.Equal(t, "reset", end.Reason)
	require.Equal(t, &Phases{VMMSetup: 1, Kernel: 2, UserSpace: 7}, phases(o))
}

func TestLaunchTimeoutKillsTheProcessGroup(t *testing.T) {
	l := launch{argv: []string{"/bin/sh", "-c", "sleep 30 & sleep 30"}, timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err := l.run(context.Background())
	require.ErrorContains(t, err, "did not finish within")
	require.Less(t, time.Since(start), 10*time.Second, "the background child holding the pipes must not hold the launch")
}

func TestLaunchCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := launch{argv: []string{"/bin/sleep", "30"}, timeout: time.Minute}.run(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestLaunchMissingProgram(t *testing.T) {
	_, err := launch{argv: []string{"/no/such/program"}, timeout: time.Second}.run(context.Background())
	require.ErrorContains(t, err, "start /no/such/program")
}

func TestPeakRSSOfAChild(t *testing.T) {
	// sh itself is small; the sample just has to be a real, positive size
	// and not this (larger) Go test process's.
	o, err := launch{argv: []string{"/bin/sh", "-c", "sleep 0.2"}, pollHWM: true, timeout: 10 * time.Second}.run(context.Background())
	require.NoError(t, err)
	require.Positive(t, o.peakRSS)
	self, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	mine, ok := statusKiB(self, "VmHWM:")
	require.True(t, ok)
	require.Less(t, o.peakRSS, mine)
}

func TestOCIConfig(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeOCIConfig(dir, []string{"true", "x"}))
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var cfg struct {
		OCIVersion string `json:"ociVersion"`
		Process    struct {
			Args []string `json:"args"`
			Env  []string `json:"env"`
		} `json:"process"`
		Root struct {
			Path     string `json:"path"`
			Readonly bool   `json:"readonly"`
		} `json:"root"`
		Linux struct {
			Namespaces []struct {
				Type string `json:"type"`
			} `json:"namespaces"`
		} `json:"linux"`
	}
	require.NoError(t, json.Unmarshal(data, &cfg))
	require.Equal(t, []string{"true", "x"}, cfg.Process.Args)
	require.Contains(t, cfg.Process.Env, "PATH="+guestPath)
	require.Equal(t, "rootfs", cfg.Root.Path)
	require.True(t, cfg.Root.Readonly)
	var ns []string
	for _, n := range cfg.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	require.ElementsMatch(t, []string{"pid", "network", "ipc", "uts", "mount"}, ns)
}
