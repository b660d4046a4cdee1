package main

// Tests of what kiln shows about a VM's inside: run --trace and --stats,
// and the probe command.

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/kvm"
	"github.com/kiln-vmm/kiln/vmm/kvm/kvmtest"
)

func TestObserveFlags(t *testing.T) {
	opt, _, err := runFlags(nil)
	require.NoError(t, err)
	require.Equal(t, config.Observe{}, opt.cfg.Observe, "nothing observed by default")

	opt, _, err = runFlags([]string{"--trace", "--stats"})
	cfg := opt.cfg
	require.NoError(t, err)
	require.Equal(t, config.AllExits, cfg.Observe.Tracing())
	require.True(t, cfg.Observe.Stats)

	opt, _, err = runFlags([]string{"--trace=io,HLT", "--trace-file", "t.txt"})
	require.NoError(t, err)
	cfg = opt.cfg
	require.Equal(t, config.ExitsIO|config.ExitsHLT, cfg.Observe.Tracing())
	require.Equal(t, "io,hlt", cfg.Observe.Trace.String())
	require.Equal(t, "t.txt", cfg.Observe.TraceFile)

	opt, _, err = runFlags([]string{"--trace-file", "t.txt"})
	require.NoError(t, err)
	cfg = opt.cfg
	require.Equal(t, config.AllExits, cfg.Observe.Tracing(), "a trace file alone traces everything")

	for _, bad := range []string{"--trace=bogus", "--trace=io,", "--trace="} {
		_, _, err = runFlags([]string{bad})
		require.ErrorIs(t, err, config.ErrUsage, bad)
	}
}

func TestProbe(t *testing.T) {
	kvmtest.MustHaveKVM(t)
	sys, err := kvm.Open()
	require.NoError(t, err)
	defer sys.Close()
	var out strings.Builder
	require.NoError(t, probe(&out, sys, kvm.DevicePath))
	s := out.String()
	t.Logf("kiln probe:\n%s", s)
	require.Contains(t, s, "/dev/kvm: KVM API version 12")
	require.Regexp(t, `vCPUs per VM: at most \d+`, s)
	for _, c := range kvm.RequiredCaps {
		require.Regexp(t, regexp.QuoteMeta(c.String())+` +yes +required`, s)
	}
	require.Contains(t, s, `"KVMKVMKVM"`, "KVM's signature leaf 0x40000000")
	require.Contains(t, s, "what kiln changes in a guest's CPUID")
	if kvm.IsPVM() {
		require.Contains(t, s, "kind: kvm-pvm")
		require.Contains(t, s, "clearcpuid=")
	} else {
		require.Contains(t, s, "kind: hardware KVM")
		require.Contains(t, s, "kernel parameters kiln adds on this host: none")
	}
}

func TestProbeWithoutKVM(t *testing.T) {
	t.Setenv("KILN_KVM", filepath.Join(t.TempDir(), "no-kvm"))
	require.Equal(t, ExitNoKVM, Main([]string{"probe"}, timeNow()))
	require.Equal(t, ExitUsage, Main([]string{"probe", "--bogus"}, timeNow()))
	require.Equal(t, 0, Main([]string{"probe", "--help"}, timeNow()))
}

// TestGuestTraceAndStats boots once with port I/O traced to a file and
// statistics on, and checks the trace shows the guest's console output,
// its boot signal and its reset, and that the statistics count the same
// exits the trace shows.
func TestGuestTraceAndStats(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	path := filepath.Join(t.TempDir(), "trace.txt")
	r := kiln(t, "", "run", "--kernel", k, "--initrd", i, "--trace=io", "--trace-file", path, "--stats", "--", "echo", "hi")
	logConsole(t, r)
	b, err := os.ReadFile(path)
	require.NoError(t, err, "the trace file")
	trace := string(b)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("trace:\n%s", trace)
		}
	})
	require.Equal(t, 0, r.code)
	require.Equal(t, "hi\n", r.stdout, "the trace goes to its file, not to the console")

	require.Regexp(t, `(?m)^\[ *[0-9.]+\] vcpu0 KVM_EXIT_IO +out +port 0x3f8 +size 1 0x68 serial: THR <- 'h'$`, trace)
	require.Contains(t, trace, "serial: THR <- 'i'\n[")
	require.Contains(t, trace, "signal: event <- 1 (guest user space started)")
	require.Contains(t, trace, "signal: event <- 2 (guest init ready for its job)")
	require.Contains(t, trace, "signal: event <- 3 (guest command started)")
	require.Regexp(t, `in +port 0x444 +size 4 0x424f4a4b signal: job -> "KJOB"`, trace, "the job's header, read four bytes at a time")
	require.Contains(t, trace, "signal: status <- 0 (the guest command exited with status 0)")
	lines := strings.Split(strings.TrimSpace(trace), "\n")
	require.Contains(t, lines[len(lines)-1], "i8042: reset (command 0xfe: pulse the CPU reset line)", "the reset is the last exit")
	require.NotContains(t, trace, "KVM_EXIT_MMIO", "--trace=io leaves out MMIO exits")

	// The statistics count every exit, traced or not: the IO row and the
	// serial row agree with the trace.
	require.Equal(t, strings.Count(trace, " KVM_EXIT_IO "), statsCount(t, r.stderr, `KVM_EXIT_IO`))
	require.Equal(t, strings.Count(trace, " serial: "), statsCount(t, r.stderr, `serial +pio 0x3f8-0x3ff`))
	require.Equal(t, strings.Count(trace, " i8042: "), statsCount(t, r.stderr, `i8042 +pio 0x60-0x64`))
	for _, phase := range []string{"VMM setup", "kernel", "init", "command", "total"} {
		require.Regexp(t, `(?m)^`+phase+` +[0-9.]+ (ms|s) `, r.stderr)
	}
}

// statsCount returns the exits column of the --stats row that row matches.
func statsCount(t *testing.T, stderr, row string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + row + ` +(\d+) `).FindStringSubmatch(stderr)
	require.NotNil(t, m, "no row %q in the statistics", row)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}
