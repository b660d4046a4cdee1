package tap

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpenErrors(t *testing.T) {
	_, err := Open("kiln-notap")
	require.ErrorIs(t, err, ErrNoTap)
	require.ErrorContains(t, err, "ip tuntap add kiln-notap mode tap")
	_, err = Open("a-name-far-too-long-for-linux")
	require.ErrorIs(t, err, ErrNoTap)
	_, err = Open("")
	require.ErrorIs(t, err, ErrNoTap)
	_, err = Create("a-name-far-too-long-for-linux")
	require.ErrorIs(t, err, ErrNoTap)
}
