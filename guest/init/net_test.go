package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/hostnet"
)

// guestNamespace makes a network namespace standing in for a guest,
// with an Ethernet interface called name (one end of a veth whose other
// end is there too), and returns its path.
func guestNamespace(t *testing.T, name string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("SKIPPED, NOT ROOT: init's network configuration is tested in a network namespace, which needs root")
	}
	ns := fmt.Sprintf("kiln-init-%d-%s", os.Getpid(), name)
	exec.Command("ip", "netns", "del", ns).Run()
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "add", name, "type", "veth", "peer", "name", "peer0"},
		{"-n", ns, "link", "set", "peer0", "up"},
	} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return "/run/netns/" + ns
}

// seen is an interface as netlink reads it back.
type seen struct {
	MAC    string
	MTU    int
	Up     bool
	Addrs  []string
	Routes []string
}

func look(t *testing.T, ns, name string) seen {
	t.Helper()
	var s seen
	require.NoError(t, hostnet.InNamespace(ns, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		s.MAC, s.MTU, s.Up = l.Attrs().HardwareAddr.String(), l.Attrs().MTU, l.Attrs().Flags&net.FlagUp != 0
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a.Scope == unix.RT_SCOPE_UNIVERSE {
				s.Addrs = append(s.Addrs, a.IPNet.String())
			}
		}
		routes, err := netlink.RouteList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Protocol == unix.RTPROT_KERNEL {
				continue
			}
			dst := "default"
			if r.Dst != nil && r.Dst.IP != nil && !r.Dst.IP.IsUnspecified() {
				dst = r.Dst.String()
			}
			if r.Gw != nil {
				dst += " via " + r.Gw.String()
			}
			s.Routes = append(s.Routes, dst)
		}
		// init sets arp_notify for every interface at boot
		// (setupNetwork): the kernel takes the larger of all's and
		// the interface's own.
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/arp_notify")
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) != "1" {
			return fmt.Errorf("arp_notify is %q in the namespace", b)
		}
		return nil
	}))
	slices.Sort(s.Addrs)
	slices.Sort(s.Routes)
	return s
}

// TestConfigure applies an interface's configuration, as init does for
// a job, then another one, as for a VM restored from the same snapshot
// with other addresses: nothing of the first is left.
func TestConfigure(t *testing.T) {
	const name = "kilnt0" // not a name the host has, whatever happens
	ns := guestNamespace(t, name)
	// What init does at boot, before any job.
	require.NoError(t, hostnet.InNamespace(ns, func() error { return setupNetwork("") }))
	apply := func(ifc contract.Interface) error {
		return hostnet.InNamespace(ns, func() error {
			h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
			if err != nil {
				return err
			}
			defer h.Close()
			return configure(h, ifc)
		})
	}

	first := contract.Interface{
		Name: name, MAC: "02:00:00:55:00:02", MTU: 1400,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.55.0.2/24"), netip.MustParsePrefix("fd55::2/64")},
		Routes: []contract.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.55.0.1")},
			{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fd55::1")},
			{Dst: netip.MustParsePrefix("10.56.0.0/16"), Via: netip.MustParseAddr("10.55.0.1")},
			{Dst: netip.MustParsePrefix("10.57.0.0/16")},
		},
	}
	require.NoError(t, apply(first))
	require.Equal(t, seen{
		MAC: "02:00:00:55:00:02", MTU: 1400, Up: true,
		Addrs:  []string{"10.55.0.2/24", "fd55::2/64"},
		Routes: []string{"10.56.0.0/16 via 10.55.0.1", "10.57.0.0/16", "default via 10.55.0.1", "default via fd55::1"},
	}, look(t, ns, name))

	second := contract.Interface{
		Name: name, MAC: "02:00:00:66:00:09",
		Addrs:  []netip.Prefix{netip.MustParsePrefix("10.66.0.9/16")},
		Routes: []contract.Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.66.0.1")}},
	}
	require.NoError(t, apply(second))
	require.Equal(t, seen{
		MAC: "02:00:00:66:00:09", MTU: 1400, Up: true, // MTU 0 keeps it
		Addrs:  []string{"10.66.0.9/16"},
		Routes: []string{"default via 10.66.0.1"},
	}, look(t, ns, name))

	// A route init cannot add is reported; the rest is applied.
	bad := second
	bad.Routes = append([]contract.Route{{Dst: netip.MustParsePrefix("10.70.0.0/16"), Via: netip.MustParseAddr("10.99.0.1")}}, second.Routes...)
	err := apply(bad)
	require.ErrorContains(t, err, "add route 10.70.0.0/16 via 10.99.0.1 on "+name)
	require.Equal(t, []string{"default via 10.66.0.1"}, look(t, ns, name).Routes)

	require.ErrorContains(t, apply(contract.Interface{Name: "eth7"}), "eth7")
	require.ErrorContains(t, apply(contract.Interface{Name: name, MTU: 20}), "MTU 20")
}

// TestSetupNetworkParam: kiln.net at boot (kiln run --net ...,ip=,gw=)
// configures eth0 as the same Interface would in a job.
func TestSetupNetworkParam(t *testing.T) {
	ns := guestNamespace(t, "eth0")
	require.NoError(t, hostnet.InNamespace(ns, func() error { return setupNetwork("10.0.2.2/24,10.0.2.1") }))
	s := look(t, ns, "eth0")
	require.True(t, s.Up)
	require.Equal(t, []string{"10.0.2.2/24"}, s.Addrs)
	require.Equal(t, []string{"default via 10.0.2.1"}, s.Routes)
	require.NoError(t, hostnet.InNamespace(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
			err = fmt.Errorf("lo is down")
		}
		return err
	}))
	err := hostnet.InNamespace(ns, func() error { return setupNetwork("10.0.2.2") })
	require.ErrorContains(t, err, "kiln.net=10.0.2.2: want ADDR/PREFIX[,GATEWAY]")
}
