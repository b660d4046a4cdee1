package bootsignal

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/guest/contract"
)

func TestEventsAndStatus(t *testing.T) {
	var events []contract.Event
	d := New(func(e contract.Event) { events = append(events, e) })
	at := time.Unix(100, 0)
	d.now = func() time.Time { return at }

	_, ok := d.Userspace()
	require.False(t, ok)
	_, ok = d.ExitStatus()
	require.False(t, ok)

	d.Write(contract.EventOffset, []byte{byte(contract.EventUserspace)})
	d.now = func() time.Time { return at.Add(time.Hour) }
	d.Write(contract.EventOffset, []byte{byte(contract.EventUserspace)}) // the first one counts
	got, ok := d.Userspace()
	require.True(t, ok)
	require.Equal(t, at, got)
	select {
	case <-d.UserspaceReached():
	default:
		t.Fatal("UserspaceReached is not closed")
	}

	d.Write(contract.StatusOffset, []byte{3})
	s, ok := d.ExitStatus()
	require.True(t, ok)
	require.Equal(t, 3, s)
	require.Equal(t, []contract.Event{contract.EventUserspace, contract.EventUserspace}, events)

	b := []byte{9, 9}
	d.Read(contract.EventOffset, b)
	require.Equal(t, []byte{0, 0}, b)
	d.Write(contract.StatusOffset, nil) // empty writes are ignored
}

// TestJob reads a job the way init does: EventReady, then the header and
// the JSON from the job port; a second EventReady starts it over.
func TestJob(t *testing.T) {
	d := New(nil)
	job := &contract.Job{Argv: []string{"sh", "-c", "exit 3"}, Raw: true, Seed: []byte{1, 2, 3}}
	b, err := job.Marshal()
	require.NoError(t, err)
	d.SetJob(b)

	read := func(n int) []byte {
		out := make([]byte, n)
		for i := range out {
			d.Read(contract.JobOffset, out[i:i+1])
		}
		return out
	}
	for round := 0; round < 2; round++ {
		d.Write(contract.EventOffset, []byte{byte(contract.EventReady)})
		n, err := contract.JobLength(read(contract.JobHeaderSize))
		require.NoError(t, err)
		got, err := contract.UnmarshalJob(read(n))
		require.NoError(t, err)
		require.Equal(t, job, got)
		require.Equal(t, []byte{0, 0, 0}, read(3), "past the end reads zero")
	}
	_, ok := d.Ready()
	require.True(t, ok)
}
