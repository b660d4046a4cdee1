package machine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The snapshot's files. state.json says what it is before anything else:
//
//	{"kiln_snapshot": 1,               the format; another one is refused
//	 "kiln_build": "dev-1a2b...",      the kiln binary that wrote it
//	 "state_sha256": "...",            of the bytes of "state" below
//	 "memory": {"size": 134217728,     the memory file's size
//	            "crc32c": "..."},      and checksum (VerifyMemory)
//	 "state": {...}}                   Snapshot: every register
//
// A truncated or changed state.json fails its checksum; a memory file of
// another size is refused at once. The memory file's checksum is not
// checked on every restore, since that would read all of guest RAM up
// front, which mapping it privately exists to avoid: `kiln snapshot
// --verify DIR` checks it, and kiln checks a warm snapshot's right after
// writing it. Both files are the user's own (0600, in a 0700 directory):
// guest memory holds whatever the guest had in it.

// envelope is state.json.
type envelope struct {
	Format int             `json:"kiln_snapshot"`
	Build  string          `json:"kiln_build"`
	SHA256 string          `json:"state_sha256"`
	Memory MemoryFileInfo  `json:"memory"`
	State  json.RawMessage `json:"state"`
}

// MemoryFileInfo describes the memory file.
type MemoryFileInfo struct {
	Size   uint64 `json:"size"`
	CRC32C string `json:"crc32c"` // hex, of the whole file, holes read as zeros
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeSnapshot makes state.json.
func encodeSnapshot(s *Snapshot, mem MemoryFileInfo) ([]byte, error) {
	state, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("%w: encode the state: %w", ErrSnapshot, err)
	}
	sum := sha256.Sum256(state)
	return json.Marshal(envelope{Format: SnapshotFormat, Build: s.Build,
		SHA256: hex.EncodeToString(sum[:]), Memory: mem, State: state})
}

// decodeSnapshot reads state.json, refusing another format, a checksum
// that does not match and a state that is incomplete.
func decodeSnapshot(b []byte) (*Snapshot, MemoryFileInfo, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, e.Memory, fmt.Errorf("%s is corrupt: %v", StateFile, err)
	}
	if e.Format != SnapshotFormat {
		return nil, e.Memory, fmt.Errorf("format %d, this kiln reads format %d (take the snapshot again)", e.Format, SnapshotFormat)
	}
	if sum := sha256.Sum256(e.State); hex.EncodeToString(sum[:]) != e.SHA256 {
		return nil, e.Memory, fmt.Errorf("%s is corrupt: its state does not match its checksum", StateFile)
	}
	var s Snapshot
	if err := json.Unmarshal(e.State, &s); err != nil {
		return nil, e.Memory, fmt.Errorf("%s is corrupt: %v", StateFile, err)
	}
	s.Format, s.Build = e.Format, e.Build
	if s.Shape.CPUs < 1 || len(s.VCPUs) != s.Shape.CPUs || s.MemSize != s.Shape.Memory ||
		s.MemSize != e.Memory.Size || s.VM.PIT == nil || s.VM.PICMaster == nil || s.VM.PICSlave == nil ||
		s.VM.IOAPIC == nil || len(s.Virtio) > 64 {
		return nil, e.Memory, fmt.Errorf("%s is incomplete", StateFile)
	}
	for i, v := range s.VCPUs {
		if v == nil || v.XSave == nil || v.LAPIC == nil || v.Events == nil {
			return nil, e.Memory, fmt.Errorf("%s is incomplete: vCPU %d", StateFile, i)
		}
	}
	return &s, e.Memory, nil
}

// ReadSnapshot reads and checks the state of the snapshot in dir, and the
// size of its memory file.
func ReadSnapshot(dir string) (*Snapshot, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrSnapshot, dir, err)
	}
	s, _, err := decodeSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrSnapshot, dir, err)
	}
	st, err := os.Stat(filepath.Join(dir, MemoryFile))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrSnapshot, dir, err)
	}
	if uint64(st.Size()) != s.MemSize {
		return nil, fmt.Errorf("%w %s: %s holds %d bytes, the VM had %d", ErrSnapshot, dir, MemoryFile, st.Size(), s.MemSize)
	}
	return s, nil
}

// VerifyMemory reads the snapshot's whole memory file and checks it
// against the checksum state.json keeps.
func VerifyMemory(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrSnapshot, dir, err)
	}
	_, info, err := decodeSnapshot(b)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrSnapshot, dir, err)
	}
	f, err := os.Open(filepath.Join(dir, MemoryFile))
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrSnapshot, dir, err)
	}
	defer f.Close()
	h := crc32.New(castagnoli)
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("%w %s: read %s: %w", ErrSnapshot, dir, MemoryFile, err)
	}
	if uint64(n) != info.Size || fmt.Sprintf("%08x", h.Sum32()) != info.CRC32C {
		return fmt.Errorf("%w %s: %s does not match its checksum", ErrSnapshot, dir, MemoryFile)
	}
	return nil
}
