package machine

import (
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func note(id string) []byte {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b[0:], 4)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(id)))
	binary.LittleEndian.PutUint32(b[8:], 4)
	return append(append(b, "Go\x00\x00"...), id...)
}

func TestGoBuildID(t *testing.T) {
	id := "abc/def"
	b := append(append([]byte("\x7fELF junk Go\x00\x00 not a note"), note(id)...), "tail"...)
	got, ok := goBuildID(b)
	require.True(t, ok)
	require.Equal(t, id, got)
	_, ok = goBuildID([]byte("no note here"))
	require.False(t, ok)
	_, ok = goBuildID(note(id)[:18]) // cut short
	require.False(t, ok)
}

// TestGoBuildIDOfThisBinary: the note read is what go tool buildid says.
func TestGoBuildIDOfThisBinary(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Skipf("SKIPPED: go tool buildid: %v", err)
	}
	b, err := os.ReadFile(exe)
	require.NoError(t, err)
	got, ok := goBuildID(b[:min(len(b), buildIDSearch)])
	require.True(t, ok, "the test binary's Go build ID note")
	require.Equal(t, strings.TrimSpace(string(out)), got)
	id, err := BuildID()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(id, "kiln-"), id)
}
