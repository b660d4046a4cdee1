package contract

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInterfaceJSON(t *testing.T) {
	ifc := Interface{
		Name: "eth0", MAC: "02:42:0a:58:00:05", MTU: 1400,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.88.0.5/16"), netip.MustParsePrefix("fd00::5/64")},
		Routes: []Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.88.0.1")},
			{Dst: netip.MustParsePrefix("10.98.0.0/16")},
		},
	}
	b, err := json.Marshal(ifc)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"eth0","mac":"02:42:0a:58:00:05","mtu":1400,
		"addrs":["10.88.0.5/16","fd00::5/64"],
		"routes":[{"dst":"0.0.0.0/0","via":"10.88.0.1"},{"dst":"10.98.0.0/16"}]}`, string(b),
		"addresses as people write them; an on-link route without a gateway")
	var back Interface
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, ifc, back)
	require.NoError(t, back.Validate())
	require.Equal(t, "default via 10.88.0.1", back.Routes[0].String())
	require.Equal(t, "10.98.0.0/16", back.Routes[1].String())
}

func TestInterfaceValidate(t *testing.T) {
	ok := Interface{Name: "eth0"}
	require.NoError(t, ok.Validate(), "only a name: the interface is taken down and brought up bare")
	down := Interface{Name: "eth0", MAC: "02:00:00:00:00:01", Down: true}
	require.NoError(t, down.Validate(), "left down with its MAC address: no network yet")
	for _, c := range []struct {
		ifc  Interface
		want string
	}{
		{Interface{}, "not a Linux interface name"},
		{Interface{Name: "a-name-far-too-long"}, "not a Linux interface name"},
		{Interface{Name: "../x"}, "not a Linux interface name"},
		{Interface{Name: "eth0", MAC: "nope"}, "not an Ethernet address"},
		{Interface{Name: "eth0", MAC: "00:00:00:00:fe:80:00:00:00:00:00:00:00:00:00:00:00:00:00:00"}, "not an Ethernet address"},
		{Interface{Name: "eth0", MAC: "01:00:5e:00:00:01"}, "multicast"},
		{Interface{Name: "eth0", MTU: 67}, "MTU 67"},
		{Interface{Name: "eth0", MTU: 65536}, "MTU 65536"},
		{Interface{Name: "eth0", Addrs: []netip.Prefix{{}}}, "not ADDR/PREFIX"},
		{Interface{Name: "eth0", Routes: []Route{{Via: netip.MustParseAddr("10.0.0.1")}}}, "no destination"},
		{Interface{Name: "eth0", Routes: []Route{{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("10.0.0.1")}}}, "another family"},
		{Interface{Name: "eth0", Down: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}, "left down"},
	} {
		require.ErrorContains(t, c.ifc.Validate(), c.want, "%+v", c.ifc)
	}
}

func TestParseNetParam(t *testing.T) {
	ifc, err := ParseNetParam("10.0.2.2/24,10.0.2.1")
	require.NoError(t, err)
	require.Equal(t, Interface{
		Name:   "eth0",
		Addrs:  []netip.Prefix{netip.MustParsePrefix("10.0.2.2/24")},
		Routes: []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.0.2.1")}},
	}, ifc, "the address keeps its host part")
	require.NoError(t, ifc.Validate())

	ifc, err = ParseNetParam("10.0.2.2/24")
	require.NoError(t, err)
	require.Empty(t, ifc.Routes, "no gateway, no default route")

	ifc, err = ParseNetParam("fd00::2/64,fd00::1")
	require.NoError(t, err)
	require.Equal(t, []Route{{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fd00::1")}}, ifc.Routes)

	for _, bad := range []string{"", "10.0.2.2", "10.0.2.2/33", "x/24", "10.0.2.2/24,", "10.0.2.2/24,fd00::1", "10.0.2.2/24,nope"} {
		_, err := ParseNetParam(bad)
		require.ErrorContains(t, err, ParamNet, "%q", bad)
	}
}

// FuzzNetParam: whatever kiln.net holds, the result is an error or an
// interface init can apply.
func FuzzNetParam(f *testing.F) {
	for _, s := range []string{"10.0.2.2/24,10.0.2.1", "10.0.2.2/24", "fd00::2/64,fd00::1", "::ffff:1.2.3.4/120,1.2.3.4", ",", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ifc, err := ParseNetParam(s)
		if err != nil {
			return
		}
		if err := ifc.Validate(); err != nil {
			t.Fatalf("%q parses to an interface init cannot apply: %v", s, err)
		}
	})
}
