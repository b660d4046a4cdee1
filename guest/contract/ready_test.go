package contract

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadyCheck(t *testing.T) {
	for _, ok := range []Ready{{Port: 8080}, {Port: 1}, {Port: 65535}, {File: "/tmp/ready"}, {After: time.Second}} {
		require.NoError(t, ok.Check(), "%+v", ok)
	}
	for _, bad := range []struct {
		r    Ready
		want string
	}{
		{Ready{}, "give one of a port, a file and a time (0 given)"},
		{Ready{Port: 80, File: "/x"}, "(2 given)"},
		{Ready{Port: 70000}, "port 70000 is out of range"},
		{Ready{Port: -1}, "port -1 is out of range"},
		{Ready{File: "tmp/x"}, `"tmp/x" is not an absolute path`},
		{Ready{After: -time.Second}, "a negative time"},
	} {
		err := bad.r.Check()
		require.ErrorIs(t, err, ErrBadReady)
		require.ErrorContains(t, err, bad.want)
	}
}

func TestReadyWords(t *testing.T) {
	require.Equal(t, "port 8080 not listening", Ready{Port: 8080}.NotMet())
	require.Equal(t, "port 8080 listening", Ready{Port: 8080}.String())
	require.Equal(t, "/run/ready not written", Ready{File: "/run/ready"}.NotMet())
	require.Equal(t, "2s passed", Ready{After: 2 * time.Second}.String())
}

// TestJobCarriesReady: the condition survives the job's encoding, and a
// job without one has none.
func TestJobCarriesReady(t *testing.T) {
	j := &Job{Argv: []string{"httpd"}, Ready: &Ready{Port: 8080}}
	b, err := j.Marshal()
	require.NoError(t, err)
	got, err := UnmarshalJob(b[JobHeaderSize:])
	require.NoError(t, err)
	require.Equal(t, j, got)
	b, err = (&Job{Argv: []string{"true"}}).Marshal()
	require.NoError(t, err)
	require.NotContains(t, string(b), "ready")
}
