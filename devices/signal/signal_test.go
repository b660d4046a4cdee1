package signal

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEventsAndStatus(t *testing.T) {
	var events []byte
	d := New(func(e byte) { events = append(events, e) })
	at := time.Unix(100, 0)
	d.now = func() time.Time { return at }

	_, ok := d.Userspace()
	require.False(t, ok)
	_, ok = d.ExitStatus()
	require.False(t, ok)

	d.Write(EventPort, []byte{EventUserspace})
	d.now = func() time.Time { return at.Add(time.Hour) }
	d.Write(EventPort, []byte{EventUserspace}) // the first one counts
	got, ok := d.Userspace()
	require.True(t, ok)
	require.Equal(t, at, got)

	d.Write(StatusPort, []byte{3})
	s, ok := d.ExitStatus()
	require.True(t, ok)
	require.Equal(t, 3, s)
	require.Equal(t, []byte{1, 1}, events)

	b := []byte{9, 9}
	d.Read(0, b)
	require.Equal(t, []byte{0, 0}, b)
	d.Write(StatusPort, nil) // empty writes are ignored
}
