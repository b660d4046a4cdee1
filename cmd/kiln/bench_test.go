package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/cmd/kiln/bench"
)

func TestBenchFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--rounds", "0"},
		{"--warmup", "-1"},
		{"--density", "1,x"},
		{"--density", "0"},
		{"--only", "docker"},
		{"--timeout", "0s"},
		{"--no-such-flag"},
	} {
		require.Equal(t, ExitUsage, Main(append([]string{"bench"}, args...), time.Now()), "%q", args)
	}
	require.Equal(t, ExitUsage, Main([]string{"bench", "--memory", "lots"}, time.Now()))
	dir := t.TempDir()
	require.Equal(t, ExitCantCreate, Main([]string{"bench", "--json", filepath.Join(dir, "no", "such", "dir.json")}, time.Now()))
}

// logWriter passes a program's output lines to the test log as they come,
// so a long benchmark shows its progress in CI.
type logWriter struct {
	t   *testing.T
	buf bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.t.Log(strings.TrimRight(line, "\n"))
	}
}

// TestBench runs the real benchmark for two rounds and checks that every
// method is in the results, with samples or with the reason it could not
// run, that the VMs' memory and kiln's boot phases were measured, the
// density runs happened, every goal is decided or explained, and the JSON
// and SVG files are well formed. Speed is not asserted: the numbers are
// for the report (docs/benchmarks.md).
func TestBench(t *testing.T) {
	kernel, initrd := guestFiles(t)
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.svg")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBinary, "bench", "--kernel", kernel, "--initrd", initrd,
		"--rounds", "2", "--density", "1,2", "--restore-density", "2", "--json", jsonPath, "--svg", svgPath)
	var stdout bytes.Buffer
	cmd.Stdout = io.MultiWriter(&stdout, &logWriter{t: t})
	cmd.Stderr = &logWriter{t: t}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("kiln bench exited with %d", ee.ExitCode())
	}
	require.NoError(t, err)

	f, err := os.Open(jsonPath)
	require.NoError(t, err)
	defer f.Close()
	res, err := bench.ReadJSON(f)
	require.NoError(t, err)
	require.Equal(t, 2, res.Settings.Rounds)
	require.NotEmpty(t, res.Host.KVM)

	for _, name := range bench.MethodNames {
		m := res.Find(name)
		require.NotNil(t, m, "method %s missing from the results", name)
		require.Contains(t, stdout.String(), name, "method %s missing from the table", name)
		if m.Unavailable != "" {
			t.Logf("%s unavailable: %s", name, m.Unavailable)
			require.Contains(t, stdout.String(), name+": unavailable: "+m.Unavailable)
			continue
		}
		require.Len(t, m.Samples, 3, "%s: one warm-up and two measured starts", name)
		for _, s := range m.Samples {
			if !s.OK() {
				// A failure must carry its reason to the report.
				require.NotEmpty(t, strings.TrimSpace(s.Err))
				require.Contains(t, stdout.String(), name+": ")
				continue
			}
			require.Positive(t, s.Exit, "%s round %d", name, s.Round)
			if m.Kind == "vm" {
				require.Positive(t, s.Userspace, "%s round %d", name, s.Round)
				require.Less(t, s.Userspace, s.Exit)
				require.NotNil(t, s.Memory, "%s round %d", name, s.Round)
				require.Positive(t, s.Memory.Guest)
				require.Equal(t, s.Memory.RSS-s.Memory.Guest, s.Memory.Overhead)
			}
		}
	}

	// kiln itself must have worked, with its boot split into phases.
	k := res.Find("kiln")
	require.Empty(t, k.Unavailable)
	require.Empty(t, k.Failures())
	require.Equal(t, 2, k.Summary(bench.ToUserspace).N)
	for _, s := range k.Samples {
		require.NotNil(t, s.Phases)
		require.Positive(t, s.Phases.VMMSetup)
		require.Positive(t, s.Phases.Kernel)
	}
	require.Contains(t, stdout.String(), "kiln boot breakdown")

	require.Len(t, res.Density, 3)
	require.True(t, res.Density[2].Restored, "the restore density run")
	require.NotNil(t, res.Snapshot)
	require.Positive(t, res.Snapshot.Took)
	require.Positive(t, res.Snapshot.Memory)
	for _, d := range res.Density {
		require.Empty(t, d.Err, "%d VMs", d.VMs)
		require.Len(t, d.Each, d.VMs)
		require.Positive(t, d.AllUserspace)
		require.Positive(t, d.TotalOverhead)
	}

	require.Len(t, res.Goals, 6)
	for _, g := range res.Goals {
		require.True(t, g.Known || g.Note != "", "goal %q is neither decided nor explained", g.Name)
	}

	svg, err := os.ReadFile(svgPath)
	require.NoError(t, err)
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else {
			require.NoError(t, err, "the SVG is not well-formed XML")
		}
	}
	require.Contains(t, string(svg), "kiln bench")
}
