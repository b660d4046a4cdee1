package oci

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/hostnet"
)

// A container's network as netavark makes it, in namespaces of the
// test's own: the container's, with eth0, and the far end of its veth
// (standing in for podman's bridge) in another; never in the host's.

func mustBeRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("SKIPPED, NOT ROOT: making network namespaces needs root; the container's network was not tested")
	}
}

func sh(t *testing.T, cmd string, args ...string) string {
	t.Helper()
	out, err := exec.Command(cmd, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", cmd, strings.Join(args, " "), out)
	return string(out)
}

func testNamespace(t *testing.T, role string) (name, path string) {
	t.Helper()
	name = fmt.Sprintf("kiln-oci-%d-%s", os.Getpid(), role)
	exec.Command("ip", "netns", "del", name).Run()
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name, filepath.Join("/run/netns", name)
}

const engineMAC = "02:00:00:88:00:05"

// engineNamespace is a container's namespace with eth0 (10.88.0.5/16,
// fd88::5/64, MTU 1400, default routes through .1 and ::1).
func engineNamespace(t *testing.T) (name, path string) {
	t.Helper()
	name, path = testNamespace(t, "ctr")
	peer, _ := testNamespace(t, "br")
	for _, args := range [][]string{
		{"-n", name, "link", "add", "eth0", "address", engineMAC, "mtu", "1400", "type", "veth", "peer", "name", "br0", "mtu", "1400", "netns", peer},
		{"-n", name, "link", "set", "eth0", "up"},
		{"-n", name, "addr", "add", "10.88.0.5/16", "dev", "eth0"},
		{"-n", name, "addr", "add", "fd88::5/64", "dev", "eth0", "nodad"},
		{"-n", name, "route", "add", "default", "via", "10.88.0.1"},
		{"-n", name, "-6", "route", "add", "default", "via", "fd88::1"},
		{"-n", peer, "link", "set", "br0", "up"},
	} {
		sh(t, "ip", args...)
	}
	return name, path
}

// TestGuestInterfaceIsIPv4: the guest's eth0 is the engine's interface
// without IPv6, which the guest kernel does not have.
func TestGuestInterfaceIsIPv4(t *testing.T) {
	ifc := &hostnet.Interface{
		Name: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0x88, 0, 5}, MTU: 1400,
		Addrs: []netip.Prefix{netip.MustParsePrefix("fd88::5/64"), netip.MustParsePrefix("10.88.0.5/16")},
		Routes: []contract.Route{
			{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fd88::1")},
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.88.0.1")},
			{Dst: netip.MustParsePrefix("10.99.0.0/16")},
		},
	}
	g := guestInterface(ifc)
	require.Equal(t, contract.Interface{
		Name: "eth0", MAC: engineMAC, MTU: 1400,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.88.0.5/16")},
		Routes: []contract.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.88.0.1")},
			{Dst: netip.MustParsePrefix("10.99.0.0/16")},
		},
	}, g)
	require.NoError(t, g.Validate())
	require.Len(t, ifc.Addrs, 2, "the engine's interface is not changed")
}

// TestReadNetwork: what config.json's network namespace gives the VM.
func TestReadNetwork(t *testing.T) {
	mustBeRoot(t)
	_, path := engineNamespace(t)
	n, err := ReadNetwork(path)
	require.NoError(t, err)
	require.Equal(t, path, n.Namespace)
	require.Equal(t, "eth0", n.Interface)
	require.Equal(t, engineMAC, n.Guest.MAC)
	require.Equal(t, 1400, n.Guest.MTU)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.88.0.5/16")}, n.Guest.Addrs)
	require.Equal(t, []contract.Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.88.0.1")}}, n.Guest.Routes)

	// podman --network none: a namespace with only lo, no device.
	_, lo := testNamespace(t, "lo")
	n, err = ReadNetwork(lo)
	require.NoError(t, err)
	require.Nil(t, n)

	_, err = ReadNetwork("/run/netns/kiln-no-such-netns")
	require.ErrorIs(t, err, ErrNoNetns)
	require.ErrorContains(t, err, "/run/netns/kiln-no-such-netns")
}

// TestCreateRefusesAMissingNetns: kiln create on a bundle naming a
// namespace that does not exist fails before any VMM is started, and
// leaves no state.
func TestCreateRefusesAMissingNetns(t *testing.T) {
	mustBeRoot(t)
	bundle, _ := podmanBundle(t, func(s *specs.Spec) {
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = "/run/netns/kiln-no-such-netns"
			}
		}
	})
	kernel := filepath.Join(t.TempDir(), "k")
	require.NoError(t, os.WriteFile(kernel, []byte("k"), 0o644))
	r := &Runtime{Store: Store{Root: t.TempDir()}, Kernel: kernel, Initrd: kernel, Exe: "/nonexistent/kiln"}
	_, err := r.Create(CreateOptions{ID: "c", Bundle: bundle})
	require.ErrorIs(t, err, ErrNoNetns)
	require.NotContains(t, err.Error(), "\n")
	require.NoDirExists(t, r.Store.Dir("c"))
}

// plumbedIn says what kiln left in the namespace: its tap, eth0's
// ingress qdisc and filters.
func plumbedIn(t *testing.T, ns string) (tap, qdisc, filter bool) {
	t.Helper()
	links := sh(t, "ip", "-n", ns, "link")
	qd := sh(t, "tc", "-n", ns, "qdisc", "show", "dev", "eth0")
	f := sh(t, "tc", "-n", ns, "filter", "show", "dev", "eth0", "ingress")
	return strings.Contains(links, hostnet.TapName), strings.Contains(qd, "ingress"), strings.TrimSpace(f) != ""
}

// TestPlumbingSavedAndTornDown: the VMM's plumbing is in the state
// directory; once the VMM is gone (its tap with it, as after SIGKILL),
// kiln delete removes the rest, and the state.
func TestPlumbingSavedAndTornDown(t *testing.T) {
	mustBeRoot(t)
	ns, path := engineNamespace(t)
	n, err := ReadNetwork(path)
	require.NoError(t, err)

	store := Store{Root: t.TempDir()}
	c, err := store.Create("net1", t.TempDir(), t.TempDir(), nil)
	require.NoError(t, err)
	// The VMM's part: a tap joined to eth0, recorded.
	tp, err := c.plumb(n)
	require.NoError(t, err)
	b, err := os.ReadFile(c.NetworkPath())
	require.NoError(t, err)
	var saved hostnet.Plumbing
	require.NoError(t, json.Unmarshal(b, &saved))
	require.Equal(t, hostnet.Plumbing{Namespace: path, Interface: "eth0", Tap: hostnet.TapName, Priority: hostnet.FilterPriority, AddedQdisc: true}, saved)
	tapThere, qdisc, filter := plumbedIn(t, ns)
	require.True(t, tapThere && qdisc && filter)
	require.Contains(t, sh(t, "tc", "-n", ns, "filter", "show", "dev", "eth0", "ingress"), "Egress Redirect to device "+hostnet.TapName)

	// A second container cannot take the same interface.
	c2, err := store.Create("net2", t.TempDir(), t.TempDir(), nil)
	require.NoError(t, err)
	_, err = c2.plumb(n)
	require.ErrorIs(t, err, hostnet.ErrPlumbed)
	require.NoError(t, c2.Remove())

	// The VMM dies: its tap goes with its descriptor, eth0's filter stays.
	require.NoError(t, tp.Close())
	tapThere, qdisc, filter = plumbedIn(t, ns)
	require.False(t, tapThere)
	require.True(t, qdisc && filter, "eth0 still redirects, to nothing")

	// kiln delete of the stopped container (its VMM, a process that
	// ended, recorded as create records it).
	done := exec.Command("true")
	require.NoError(t, done.Run())
	c.Pid = done.Process.Pid
	c.PidStart = 1 // not the start of any live process with that pid
	require.NoError(t, c.Save())
	c.Unlock()
	r := &Runtime{Store: store}
	require.NoError(t, r.Delete("net1", false))
	tapThere, qdisc, filter = plumbedIn(t, ns)
	require.False(t, tapThere || qdisc || filter, "nothing of kiln's is left in the namespace")
	require.NoDirExists(t, c.Dir)
	require.Contains(t, sh(t, "ip", "-n", ns, "addr", "show", "eth0"), "10.88.0.5/16", "the engine's interface is as it was")
}

// TestTeardownOfAnIntent: a VMM killed between recording what it was
// about to do and doing it leaves net.json with nothing behind it;
// teardown is content, and a container without a network has nothing
// to undo.
func TestTeardownOfAnIntent(t *testing.T) {
	mustBeRoot(t)
	_, path := engineNamespace(t)
	c, err := Store{Root: t.TempDir()}.Create("c", t.TempDir(), t.TempDir(), nil)
	require.NoError(t, err)
	defer c.Remove()
	require.NoError(t, c.TeardownNetwork(), "no net.json: nothing to do")
	require.NoError(t, c.SavePlumbing(hostnet.Plumbing{Namespace: path, Interface: "eth0", Tap: hostnet.TapName, Priority: hostnet.FilterPriority}))
	require.NoError(t, c.TeardownNetwork())
	require.NoFileExists(t, c.NetworkPath())

	// The engine removed the namespace before kiln delete ran.
	require.NoError(t, c.SavePlumbing(hostnet.Plumbing{Namespace: "/run/netns/kiln-gone", Interface: "eth0", Tap: hostnet.TapName, Priority: hostnet.FilterPriority}))
	require.NoError(t, c.TeardownNetwork())
}

// TestLateNetwork: a VMM in a namespace of its own (config.json asked for
// a new one) whose namespace gained an interface after create, as ctr run
// --cni makes one, has it joined to its tap at start, and the guest is
// to take its address; one that stayed empty starts without a network.
func TestLateNetwork(t *testing.T) {
	mustBeRoot(t)
	// A process in an empty namespace with the VMM's tap, as a VMM for a
	// new one is.
	ns, _ := testNamespace(t, "late")
	sh(t, "ip", "-n", ns, "tuntap", "add", "kilntap0", "mode", "tap")
	cmd := exec.Command("ip", "netns", "exec", ns, "sleep", "60")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := waitInNamespace(t, cmd.Process.Pid, ns)
	c := &Container{Dir: t.TempDir(), Record: Record{ID: "late", Pid: pid}}
	net, err := c.lateNetwork()
	require.NoError(t, err)
	require.Nil(t, net, "no interface appeared: no network")

	// What ctr run --cni does next: an interface in /proc/PID/ns/net.
	sh(t, "ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "x0")
	sh(t, "ip", "-n", ns, "addr", "add", "10.66.0.9/24", "dev", "eth0")
	sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	net, err = c.lateNetwork()
	require.NoError(t, err)
	require.Len(t, net, 1)
	require.Equal(t, "10.66.0.9/24", net[0].Addrs[0].String())
	out := sh(t, "tc", "-n", ns, "filter", "show", "dev", "eth0", "ingress")
	require.Contains(t, out, "Redirect to device kilntap0", "eth0's frames go to the tap: %s", out)
	out = sh(t, "tc", "-n", ns, "filter", "show", "dev", "kilntap0", "ingress")
	require.Contains(t, out, "Redirect to device eth0", "the tap's frames go to eth0: %s", out)
	require.NoError(t, c.TeardownNetwork())
	out = sh(t, "tc", "-n", ns, "filter", "show", "dev", "eth0", "ingress")
	require.NotContains(t, out, "Redirect", "delete took the filter away")
}

// waitInNamespace waits until the process pid (ip netns exec, which
// becomes sleep) is in the namespace ns.
func waitInNamespace(t *testing.T, pid int, ns string) int {
	t.Helper()
	want, err := os.Stat(filepath.Join("/run/netns", ns))
	require.NoError(t, err)
	for range 500 {
		if st, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && os.SameFile(st, want) {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d never entered %s", pid, ns)
	return 0
}
