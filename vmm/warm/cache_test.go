package warm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/vmm/machine"
)

// fakeCache plays the snapshot's two operations: take writes a marker,
// restore reads it.
type fakeCache struct {
	dir         string
	takes       atomic.Int32
	why         []error
	mu          sync.Mutex
	refuseFirst bool // restore refuses the first snapshot it sees
}

func (f *fakeCache) take(why error) error {
	f.mu.Lock()
	f.why = append(f.why, why)
	f.mu.Unlock()
	f.takes.Add(1)
	time.Sleep(20 * time.Millisecond) // a take is slow: others wait on the lock
	return os.WriteFile(filepath.Join(f.dir, "taken"), []byte(fmt.Sprint(f.takes.Load())), 0o644)
}

func (f *fakeCache) restore() (string, error) {
	b, err := os.ReadFile(filepath.Join(f.dir, "taken"))
	if err != nil {
		return "", err
	}
	if f.refuseFirst && string(b) == "1" {
		return "", fmt.Errorf("%w: the host changed", machine.ErrSnapshot)
	}
	return "restored from take " + string(b), nil
}

func TestRestoreOrTakeTakesWhenThereIsNone(t *testing.T) {
	f := &fakeCache{dir: t.TempDir()}
	m, err := restoreOrTake(filepath.Join(f.dir, "snap"), "b", f.restore, f.take)
	require.NoError(t, err)
	require.Equal(t, "restored from take 1", m)
	require.ErrorIs(t, f.why[0], ErrNone)
}

func TestRestoreOrTakeRetakesARefusedSnapshotOnce(t *testing.T) {
	f := &fakeCache{dir: t.TempDir(), refuseFirst: true}
	m, err := restoreOrTake(filepath.Join(f.dir, "snap"), "b", f.restore, f.take)
	require.NoError(t, err)
	require.Equal(t, "restored from take 2", m)
	require.Len(t, f.why, 2)
	require.ErrorIs(t, f.why[1], machine.ErrSnapshot, "told why it takes it again")
}

func TestRestoreOrTakeGivesUpAfterATakeFails(t *testing.T) {
	f := &fakeCache{dir: t.TempDir()}
	boom := errors.New("the guest crashed")
	_, err := restoreOrTake(filepath.Join(f.dir, "snap"), "b", f.restore, func(error) error { return boom })
	require.ErrorIs(t, err, boom)
}

// TestOneTakesTheOthersWait: VMs started at once with no snapshot take it
// once; the others wait on the lock and restore what it took.
func TestOneTakesTheOthersWait(t *testing.T) {
	f := &fakeCache{dir: t.TempDir()}
	snap := filepath.Join(f.dir, "snap")
	// The fake snapshot is never usable (it is no real snapshot), so
	// every caller's take is asked; one that finds the marker of an
	// earlier take does what a real usable() would: nothing. The lock
	// must make them wait for the first take to finish.
	var wg sync.WaitGroup
	results := make([]string, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := restoreOrTake(snap, "b", f.restore, func(why error) error {
				if _, err := os.Stat(filepath.Join(f.dir, "taken")); err == nil {
					return nil // taken meanwhile: what a real usable() would see
				}
				return f.take(why)
			})
			require.NoError(t, err)
			results[i] = m
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, f.takes.Load(), "taken once")
	for _, r := range results {
		require.Equal(t, "restored from take 1", r)
	}
}

func TestUsable(t *testing.T) {
	ok, why := usable(filepath.Join(t.TempDir(), "none"), "b")
	require.False(t, ok)
	require.ErrorIs(t, why, ErrNone)

	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, machine.StateFile), []byte("{not json"), 0o600))
	ok, why = usable(bad, "b")
	require.False(t, ok)
	require.NotErrorIs(t, why, ErrNone)
	require.ErrorContains(t, why, "corrupt")
}

func TestDefaultCache(t *testing.T) {
	t.Setenv("KILN_CACHE", "/some/cache")
	require.Equal(t, "/some/cache/snapshots", DefaultCache().Dir)
	t.Setenv("KILN_CACHE", "")
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	require.Equal(t, "/var/cache/kiln/snapshots", DefaultCache().Dir, "containerd's shim runs kiln without HOME")
}
