package machine

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/config"
	"github.com/kiln-vmm/kiln/vmm/cpu"
	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// testSnapshot is the smallest state decodeSnapshot takes as whole.
func testSnapshot() *Snapshot {
	return &Snapshot{
		Build:   "test",
		Shape:   config.Shape{CPUs: 1, Memory: 64 << 20},
		MemSize: 64 << 20,
		VM:      VMState{PIT: new(kvm.PITState2), PICMaster: new(kvm.IRQChip), PICSlave: new(kvm.IRQChip), IOAPIC: new(kvm.IRQChip)},
		VCPUs:   []*cpu.State{{XSave: new(kvm.XSave), LAPIC: new(kvm.LAPICState), Events: new(kvm.VCPUEvents), MSRs: []kvm.MSR{{Index: 0x10, Data: 12345}}}},
	}
}

func TestSnapshotFileRoundTrip(t *testing.T) {
	s := testSnapshot()
	b, err := encodeSnapshot(s, MemoryFileInfo{Size: 64 << 20, CRC32C: "01020304"})
	require.NoError(t, err)
	got, mem, err := decodeSnapshot(b)
	require.NoError(t, err)
	require.Equal(t, "01020304", mem.CRC32C)
	require.Equal(t, SnapshotFormat, got.Format)
	require.Equal(t, "test", got.Build)
	require.Equal(t, s.VCPUs[0].MSRs, got.VCPUs[0].MSRs)
}

func TestSnapshotFileRefusesBadInput(t *testing.T) {
	good, err := encodeSnapshot(testSnapshot(), MemoryFileInfo{Size: 64 << 20})
	require.NoError(t, err)
	flipped := bytes.Replace(good, []byte(`"Data":12345`), []byte(`"Data":12346`), 1)
	require.NotEqual(t, good, flipped)
	other := testSnapshot()
	other.VCPUs = nil
	incomplete, err := encodeSnapshot(other, MemoryFileInfo{Size: 64 << 20})
	require.NoError(t, err)
	for name, c := range map[string]struct {
		b   []byte
		msg string
	}{
		"truncated":    {good[:len(good)/2], "corrupt"},
		"changed":      {flipped, "does not match its checksum"},
		"other format": {[]byte(`{"kiln_snapshot": 99}`), "format 99"},
		"not json":     {[]byte("\x00\x01"), "corrupt"},
		"incomplete":   {incomplete, "incomplete"},
		"empty":        {nil, "corrupt"},
	} {
		_, _, err := decodeSnapshot(c.b)
		require.ErrorContains(t, err, c.msg, name)
	}
}

func TestReadSnapshotChecksMemory(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte{7}, 64<<20)
	b, err := encodeSnapshot(testSnapshot(), MemoryFileInfo{Size: 64 << 20, CRC32C: "00000000"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, StateFile), b, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, MemoryFile), data[:1<<20], 0o600))
	_, err = ReadSnapshot(dir)
	require.ErrorIs(t, err, ErrSnapshot)
	require.ErrorContains(t, err, "holds 1048576 bytes, the VM had 67108864")

	require.NoError(t, os.WriteFile(filepath.Join(dir, MemoryFile), data, 0o600))
	_, err = ReadSnapshot(dir)
	require.NoError(t, err)
	require.ErrorContains(t, VerifyMemory(dir), "does not match its checksum")
}

// FuzzDecodeSnapshot: whatever state.json holds, decoding ends in a
// snapshot or an error, never a panic.
func FuzzDecodeSnapshot(f *testing.F) {
	good, _ := encodeSnapshot(testSnapshot(), MemoryFileInfo{Size: 64 << 20})
	f.Add(good)
	f.Add([]byte(`{"kiln_snapshot":1,"state":{}}`))
	f.Add([]byte(`{"kiln_snapshot":1,"state_sha256":"","state":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _, err := decodeSnapshot(b)
		if err == nil && (s == nil || len(s.VCPUs) != s.Shape.CPUs) {
			t.Fatalf("decoded an inconsistent snapshot")
		}
	})
}

// BenchmarkDecodeSnapshot reads a state.json the size of a one-vCPU VM's
// (41 MSRs, 60 CPUID leaves, a few devices): part of every restore.
func BenchmarkDecodeSnapshot(b *testing.B) {
	s := testSnapshot()
	for i := 0; i < 41; i++ {
		s.VCPUs[0].MSRs = append(s.VCPUs[0].MSRs, kvm.MSR{Index: uint32(i), Data: uint64(i) << 40})
	}
	for i := 0; i < 60; i++ {
		s.VCPUs[0].CPUID = append(s.VCPUs[0].CPUID, kvm.CPUIDEntry{Function: uint32(i), EAX: 0xffffffff})
	}
	data, err := encodeSnapshot(s, MemoryFileInfo{Size: 64 << 20})
	require.NoError(b, err)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, _, err := decodeSnapshot(data); err != nil {
			b.Fatal(err)
		}
	}
}
