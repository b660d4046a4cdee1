package main

// Tests that boot a real guest under KVM: the kernel and initramfs that
// `make` builds, with the kiln binary built from this tree. They skip only
// where /dev/kvm cannot be opened; where it can, a missing kernel or
// initramfs is a failure, not a skip.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/kvm/kvmtest"
	"github.com/kiln-vmm/kiln/vmm/trace"
)

// bootDeadline bounds one guest boot. Under kvm-pvm (software nested KVM) a
// boot takes tens of seconds, and more when tests run in parallel.
const bootDeadline = 3 * time.Minute

var kilnBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kiln-test-")
	if err != nil {
		panic(err)
	}
	kilnBinary = filepath.Join(dir, "kiln")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// guestFiles returns the kernel and initramfs built by make.
func guestFiles(t *testing.T) (kernel, initrd string) {
	t.Helper()
	kernel, initrd = kvmtest.GuestFiles(t)
	if _, err := os.Stat(kilnBinary); err != nil {
		build := exec.Command("go", "build", "-o", kilnBinary, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0") // as make builds it
		out, err := build.CombinedOutput()
		require.NoError(t, err, "go build: %s", out)
	}
	return kernel, initrd
}

type run struct {
	code           int
	stdout, stderr string
}

// kiln runs the kiln binary with args and stdin, under bootDeadline.
func kiln(t *testing.T, stdin string, args ...string) run {
	t.Helper()
	return runCommand(t, stdin, kilnBinary, args...)
}

// runCommand runs a command (kiln, possibly through a wrapper such as
// ip netns exec) under bootDeadline.
func runCommand(t *testing.T, stdin, name string, args ...string) run {
	t.Helper()
	return runEnv(t, nil, stdin, name, args...)
}

// runEnv is runCommand with extra environment variables.
func runEnv(t *testing.T, env []string, stdin, name string, args ...string) run {
	t.Helper()
	return runEnvDeadline(t, env, bootDeadline, stdin, name, args...)
}

// runEnvDeadline is runEnv with a deadline of its own.
func runEnvDeadline(t *testing.T, env []string, deadline time.Duration, stdin, name string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	// A process it started may hold its stdout (an OCI container's VMM
	// does): past the deadline, stop waiting for it too.
	cmd.WaitDelay = 10 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	start := time.Now()
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s %q: %v", filepath.Base(name), args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), args, deadline, r.stdout, r.stderr)
	}
	t.Logf("%s %q: exit %d after %.1f s", filepath.Base(name), args, r.code, time.Since(start).Seconds())
	return r
}

// logConsole shows everything the guest printed when a test fails.
func logConsole(t *testing.T, r run) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("guest console (stdout):\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
	})
}

func TestGuestEcho(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	r := kiln(t, "", "run", "--kernel", k, "--initrd", i, "--boot-time", "--", "echo", "hello", "from", "kiln")
	logConsole(t, r)
	require.Equal(t, 0, r.code)
	require.Equal(t, "hello from kiln\n", r.stdout)
	require.Regexp(t, `boot time \(launch to guest user space\): [0-9.]+ s`, r.stderr)
}

// TestGuestExitStatus runs a command that fails and reads kiln's
// machine-readable report of the run.
func TestGuestExitStatus(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	report := filepath.Join(t.TempDir(), "report.jsonl")
	r := kiln(t, "", "run", "--kernel", k, "--initrd", i, "--report", report, "--", "sh", "-c", "exit 3")
	logConsole(t, r)
	require.Equal(t, 3, r.code)

	b, err := os.ReadFile(report)
	require.NoError(t, err)
	var events []trace.Event
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e trace.Event
		require.NoError(t, json.Unmarshal([]byte(line), &e), line)
		events = append(events, e)
	}
	require.Len(t, events, 3, "userspace, running, end: %s", b)
	require.Equal(t, "userspace", events[0].Event)
	require.Equal(t, "running", events[1].Event)
	end := events[2]
	require.Equal(t, "end", end.Event)
	require.Equal(t, "reset", end.Reason)
	require.NotNil(t, end.ExitStatus)
	require.Equal(t, 3, *end.ExitStatus)
	require.Equal(t, 3, *end.Code)
	require.Positive(t, end.Phases.VMMSetupNS)
	require.Positive(t, end.Phases.KernelNS)
	require.Positive(t, end.Phases.InitNS)
	require.Positive(t, end.Phases.CommandNS)
	require.Less(t, events[0].AtNS, events[1].AtNS)
	require.Less(t, events[1].AtNS, end.AtNS)
}

func TestGuestCPUsAndMemory(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	r := kiln(t, "", "run", "--kernel", k, "--initrd", i, "--cpus", "2", "--memory", "512M", "--",
		"sh", "-c", "grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo")
	logConsole(t, r)
	require.Equal(t, 0, r.code)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, "2", strings.TrimSpace(lines[0]), "CPUs seen by the guest")
	m := regexp.MustCompile(`MemTotal:\s+(\d+) kB`).FindStringSubmatch(lines[1])
	require.NotNil(t, m)
	kb, _ := strconv.Atoi(m[1])
	// The kernel keeps some memory for itself: MemTotal is a bit less.
	require.InDelta(t, 512*1024-20*1024, kb, 20*1024, "MemTotal %d kB", kb)
}

func TestGuestShellReadsStdin(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	r := kiln(t, "echo from-the-shell\nexit 5\n", "run", "--kernel", k, "--initrd", i)
	logConsole(t, r)
	require.Contains(t, r.stdout, "from-the-shell")
	require.Equal(t, 5, r.code)
}

func TestBadKernelsGiveOneLineErrors(t *testing.T) {
	_, i := guestFiles(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(text, []byte("this is not a kernel\n"), 0o644))
	real, err := os.ReadFile(filepath.Join(filepath.Dir(i), "vmlinux"))
	require.NoError(t, err)
	truncated := filepath.Join(dir, "vmlinux-truncated")
	require.NoError(t, os.WriteFile(truncated, real[:len(real)/3], 0o644))
	bigInitrd := filepath.Join(dir, "big.cpio")
	require.NoError(t, os.WriteFile(bigInitrd, make([]byte, 48<<20), 0o644))

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--kernel", text}, ExitBadInput, "not a Linux kernel"},
		{[]string{"--kernel", truncated}, ExitBadInput, "not a Linux kernel"},
		{[]string{"--initrd", bigInitrd, "--memory", "48M"}, ExitBadInput, "raise --memory"},
	} {
		args := append([]string{"run", "--kernel", filepath.Join(filepath.Dir(i), "vmlinux"), "--initrd", i}, c.args...)
		r := kiln(t, "", append(args, "--", "true")...)
		require.Equal(t, c.code, r.code, "%q: %s", c.args, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		last := lines[len(lines)-1]
		require.Contains(t, last, c.msg)
		require.True(t, strings.HasPrefix(last, "kiln: "), last)
		require.NotContains(t, r.stderr, "goroutine")
		require.NotContains(t, r.stderr, "panic")
	}
}
