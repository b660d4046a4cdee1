package config

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseDisk(t *testing.T) {
	d, err := ParseDisk("/tmp/a.img")
	require.NoError(t, err)
	require.Equal(t, Disk{Path: "/tmp/a.img"}, d)
	d, err = ParseDisk("/tmp/b.img,ro")
	require.NoError(t, err)
	require.True(t, d.ReadOnly)
	for _, bad := range []string{"", ",ro", "/x,rx", "/x,ro,bogus"} {
		_, err := ParseDisk(bad)
		require.ErrorIs(t, err, ErrUsage, bad)
	}
	require.Equal(t, "vda", DiskName(0))
	require.Equal(t, "vdz", DiskName(25))
	require.Equal(t, "vdaa", DiskName(26))
}

func TestParseVsock(t *testing.T) {
	v, err := ParseVsock("3,/tmp/v.sock")
	require.NoError(t, err)
	require.Equal(t, Vsock{CID: 3, Path: "/tmp/v.sock"}, v)
	for _, bad := range []string{"", "3", "3,", "x,/p", "2,/p", "-1,/p", "4294967295,/p"} {
		_, err := ParseVsock(bad)
		require.ErrorIs(t, err, ErrUsage, bad)
	}
}

func TestParseNet(t *testing.T) {
	n, err := ParseNet("tap=kt0,mac=02:00:00:00:00:01,ip=10.0.2.2/24,gw=10.0.2.1")
	require.NoError(t, err)
	require.Equal(t, "kt0", n.Tap)
	require.Equal(t, "02:00:00:00:00:01", n.MAC.String())
	require.Equal(t, "10.0.2.2/24", n.IP)
	require.Equal(t, "10.0.2.1", n.Gateway)
	n, err = ParseNet("tap=kt0")
	require.NoError(t, err)
	require.Len(t, n.MAC, 6)
	require.Equal(t, byte(0x02), n.MAC[0], "locally administered")
	for _, bad := range []string{"", "mac=02:00:00:00:00:01", "tap=x,mac=zz", "tap=x,ip=10.0.0.1", "tap=x,gw=10.0.0.1", "tap=x,speed=10"} {
		_, err := ParseNet(bad)
		require.ErrorIs(t, err, ErrUsage, bad)
	}
	c := &Config{Shape: Shape{Nets: []Net{n}}}
	c.Nets[0].IP, c.Nets[0].Gateway = "10.0.2.2/24", "10.0.2.1"
	require.NotContains(t, KernelCmdline(c, Host{}, nil), "kiln.net", "the job carries the addresses")
}

func TestParseShare(t *testing.T) {
	s, err := ParseShare("/srv/data", 0)
	require.NoError(t, err)
	require.Equal(t, Share{HostDir: "/srv/data", GuestDir: "/mnt/data", Tag: "kiln0"}, s)
	s, err = ParseShare("/srv/data:/src,ro,tag=code", 3)
	require.NoError(t, err)
	require.Equal(t, Share{HostDir: "/srv/data", GuestDir: "/src", Tag: "code", ReadOnly: true}, s)
	s, err = ParseShare(".", 1)
	require.NoError(t, err)
	require.True(t, filepath.IsAbs(s.HostDir))
	require.Equal(t, "kiln1", s.Tag)
	for _, bad := range []string{"", ":/x", "/d:rel", "/d:/", "/d,rx", "/d,tag="} {
		_, err := ParseShare(bad, 0)
		require.ErrorIs(t, err, ErrUsage, bad)
	}
}
