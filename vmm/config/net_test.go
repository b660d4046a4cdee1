package config

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// TestJobNet: every network device becomes an interface of the job, with
// its MAC address (the one given, or the tap's derived one) and, with an
// IP, that address and a default route; Interfaces, when set, replace
// them whole.
func TestJobNet(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x10}
	c := &Config{Shape: Shape{Nets: []Net{
		{Tap: "kt0", MAC: mac, IP: "10.0.2.2/24", Gateway: "10.0.2.1"},
		{Tap: "kt1", IP: "10.0.3.2/24"},
		{Tap: "kt2"},
	}}}
	got := c.Job().Net
	require.Equal(t, []contract.Interface{
		{Name: "eth0", MAC: "02:00:00:00:00:10", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.2.2/24")},
			Routes: []contract.Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.0.2.1")}}},
		{Name: "eth1", MAC: DefaultMAC("kt1").String(), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.3.2/24")}},
		{Name: "eth2", MAC: DefaultMAC("kt2").String()},
	}, got)
	for _, ifc := range got {
		require.NoError(t, ifc.Validate())
	}
	require.Empty(t, (&Config{}).Job().Net, "no network device, no interface")

	// A container's VM: the engine's interface, as it is.
	own := []contract.Interface{{Name: "eth0", MAC: "02:42:0a:58:00:05", MTU: 1400,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.88.0.5/16")}}}
	c.Interfaces = own
	c.Container = &contract.Container{}
	require.Equal(t, own, c.Job().Net)
}

// TestAttachNets: a restore gives each of the snapshot's network devices
// the tap, MAC and addresses of the VM being restored, and refuses any
// other number of them, none included.
func TestAttachNets(t *testing.T) {
	snap := Shape{CPUs: 1, Nets: []Net{{Tap: "kiln-snap0"}}}
	got, err := snap.Attach(Shape{Nets: []Net{{Tap: "kt7", IP: "10.0.7.2/24"}}})
	require.NoError(t, err)
	require.Equal(t, []Net{{Tap: "kt7", IP: "10.0.7.2/24"}}, got.Nets)
	require.Equal(t, "kiln-snap0", snap.Nets[0].Tap, "the snapshot's shape is not changed")
	for _, own := range [][]Net{nil, {{Tap: "a"}, {Tap: "b"}}} {
		_, err := snap.Attach(Shape{Nets: own})
		require.ErrorIs(t, err, ErrUsage)
		require.ErrorContains(t, err, "the snapshot has 1")
	}
	_, err = Shape{}.Attach(Shape{Nets: []Net{{Tap: "a"}}})
	require.ErrorContains(t, err, "1 network devices given (--net), the snapshot has 0")
}
