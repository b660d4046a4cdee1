package contract

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJobRoundTrip(t *testing.T) {
	for _, j := range []*Job{
		{},
		{Argv: []string{"echo", "hello"}},
		{Argv: []string{"printf", "%s\n", "a b", "\"quoted\"", "'single'", ""}, Raw: true, Quiet: true},
		{Env: []string{"A=B"}, Seed: []byte{0, 1, 255}, Time: 1700000000123456789,
			Mounts: []Mount{{Tag: "kiln0", Dir: "/src", ReadOnly: true}}},
		{Argv: []string{"httpd"}, Net: []Interface{{
			Name: "eth0", MAC: "02:42:0a:58:00:05", MTU: 1400,
			Addrs:  []netip.Prefix{netip.MustParsePrefix("10.88.0.5/16"), netip.MustParsePrefix("fd00::5/64")},
			Routes: []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.88.0.1")}, {Dst: netip.MustParsePrefix("10.98.0.0/16")}},
		}}},
	} {
		b, err := j.Marshal()
		require.NoError(t, err)
		n, err := JobLength(b[:JobHeaderSize])
		require.NoError(t, err)
		require.Equal(t, len(b)-JobHeaderSize, n)
		got, err := UnmarshalJob(b[JobHeaderSize:])
		require.NoError(t, err)
		require.Equal(t, j, got)

		p, err := EncodeJobParam(j)
		require.NoError(t, err)
		require.NotContains(t, p, " ", "a kernel parameter has no spaces")
		require.NotContains(t, p, "\"")
		got, err = DecodeJobParam(p)
		require.NoError(t, err)
		require.Equal(t, j, got)
	}
}

func TestJobRefused(t *testing.T) {
	// A VMM without the signal device reads all ones.
	_, err := JobLength([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	require.ErrorIs(t, err, ErrNoJob)
	_, err = JobLength([]byte("KJOB"))
	require.ErrorIs(t, err, ErrNoJob)
	_, err = JobLength([]byte("KJOB\xff\xff\xff\xff"))
	require.ErrorContains(t, err, "at most")
	_, err = (&Job{Env: []string{strings.Repeat("x", MaxJobSize)}}).Marshal()
	require.ErrorContains(t, err, "at most")
	_, err = DecodeJobParam("!!!")
	require.Error(t, err)
	_, err = UnmarshalJob([]byte("{"))
	require.Error(t, err)
}

// FuzzJob: whatever bytes init reads, decoding ends in a job or an error,
// and a job that decodes survives another round trip unchanged.
func FuzzJob(f *testing.F) {
	b, _ := (&Job{Argv: []string{"sh", "-c", "exit 3"}, Seed: []byte{1}}).Marshal()
	f.Add(b)
	f.Add([]byte("KJOB\x02\x00\x00\x00{}"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte("KJOB\x0b\x00\x00\x00{\"Argv\":[]}"))
	b, _ = (&Job{Net: []Interface{{Name: "eth0", MAC: "02:42:0a:58:00:05", MTU: 1400,
		Addrs:  []netip.Prefix{netip.MustParsePrefix("10.88.0.5/16"), netip.MustParsePrefix("fd00::5/64")},
		Routes: []Route{{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fe80::1")}}}}}).Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := JobLength(b)
		if err != nil {
			return
		}
		body := b[JobHeaderSize:]
		if n < len(body) {
			body = body[:n]
		}
		j, err := UnmarshalJob(body)
		if err != nil {
			return
		}
		again, err := j.Marshal()
		if err != nil {
			return // too large once re-encoded
		}
		j2, err := UnmarshalJob(again[JobHeaderSize:])
		if err != nil {
			t.Fatalf("re-encoded job does not decode: %v", err)
		}
		// Equal as encoded: an empty list and none are the same job.
		twice, err := j2.Marshal()
		require.NoError(t, err)
		require.Equal(t, string(again), string(twice))
	})
}

func TestExecControlRoundTrip(t *testing.T) {
	m := Control{Op: ControlExec, Exec: &Exec{
		ID: "ab12", Args: []string{"sh", "-c", "echo"}, Env: []string{"A=1"}, Cwd: "/",
		User: ContainerUser{UID: 1, GID: 2}, Terminal: true, Port: 1088,
		Capabilities: &Capabilities{Bounding: []int{0}},
	}}
	line := MarshalControl(m)
	require.Equal(t, byte('\n'), line[len(line)-1])
	require.Equal(t, 1, bytes.Count(line, []byte("\n")), "one line")
	got, err := UnmarshalControl(line[:len(line)-1])
	require.NoError(t, err)
	require.Equal(t, m, got)
	got, err = UnmarshalControl([]byte(`{"op":"exec-exited","id":"ab12","status":127,"error":"not found"}`))
	require.NoError(t, err)
	require.Equal(t, Control{Op: ControlExecExited, ID: "ab12", Status: 127, Error: "not found"}, got)
}
