package hostnet

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/devices/tap"
	"github.com/kiln-vmm/kiln/guest/contract"
)

// TestMain runs the test binary as a VMM that plumbs a namespace and
// waits to be killed, for TestTeardownAfterSIGKILL.
func TestMain(m *testing.M) {
	if ns := os.Getenv("KILN_HOSTNET_PLUMB"); ns != "" {
		_, p, err := Plumb(ns, "eth0", "")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(p)
		select {} // the tap stays open until the process dies
	}
	os.Exit(m.Run())
}

func TestInspect(t *testing.T) {
	mustBeRoot(t)
	e := newEngineNet(t)
	host := hostLinks(t)

	ifc, err := Inspect(e.nsPath)
	require.NoError(t, err)
	require.Equal(t, "eth0", ifc.Name)
	require.Equal(t, engineMAC, ifc.MAC)
	require.Equal(t, engineMTU, ifc.MTU)
	require.ElementsMatch(t, []netip.Prefix{
		netip.MustParsePrefix("10.77.0.2/24"), netip.MustParsePrefix("fd77::2/64"),
	}, ifc.Addrs, "global addresses only, not fe80::")
	def4 := contract.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.77.0.1")}
	def6 := contract.Route{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fd77::1")}
	require.Len(t, ifc.Routes, 4, "%v", ifc.Routes)
	require.ElementsMatch(t, []contract.Route{def4, def6}, ifc.Routes[:2], "default routes first")
	require.ElementsMatch(t, []contract.Route{
		{Dst: netip.MustParsePrefix("10.99.0.0/16"), Via: netip.MustParseAddr("10.77.0.1")},
		{Dst: netip.MustParsePrefix("10.98.0.0/16")},
	}, ifc.Routes[2:], "the kernel's subnet routes are not listed")

	g := ifc.Guest("eth0")
	require.NoError(t, g.Validate())
	require.Equal(t, "02:00:00:77:00:02", g.MAC)

	threadsAtHome(t)
	require.Equal(t, host, hostLinks(t), "the host's namespace is unchanged")
}

func TestInspectErrors(t *testing.T) {
	mustBeRoot(t)

	_, err := Inspect("/run/netns/kiln-no-such-namespace")
	require.ErrorIs(t, err, ErrNoNamespace)
	require.ErrorContains(t, err, "/run/netns/kiln-no-such-namespace")

	notNS := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notNS, nil, 0o644))
	_, err = Inspect(notNS)
	require.ErrorContains(t, err, "not a network namespace")

	ns, path := newNamespace(t, "lo")
	_, err = Inspect(path)
	require.ErrorIs(t, err, ErrNoInterface, "a namespace with only lo")

	// Two interfaces, neither eth0: which one the VM takes is unclear.
	ip(t, "-n", ns, "link", "add", "ethA", "type", "veth", "peer", "name", "ethB")
	_, err = Inspect(path)
	require.ErrorContains(t, err, "2 interfaces (ethA, ethB) and none called eth0")
	// With an eth0 among them, it is eth0.
	ip(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "x0")
	ifc, err := Inspect(path)
	require.NoError(t, err)
	require.Equal(t, "eth0", ifc.Name)
	require.Empty(t, ifc.Addrs)
	require.Empty(t, ifc.Routes)
	threadsAtHome(t)
}

// plumbed checks with tc(8) that kiln's qdiscs and filters are in place
// in the namespace ns, or that none are left.
func plumbed(t *testing.T, ns string, tapName string, want bool) {
	t.Helper()
	qd := ip(t, "tc", "-n", ns, "qdisc", "show", "dev", "eth0")
	f := ip(t, "tc", "-n", ns, "filter", "show", "dev", "eth0", "ingress")
	if !want {
		require.NotContains(t, qd, "ingress", "eth0's ingress qdisc is gone")
		require.Empty(t, strings.TrimSpace(f), "eth0's filters are gone")
		require.NotContains(t, ip(t, "-n", ns, "link"), tapName, "the tap is gone")
		return
	}
	require.Contains(t, qd, "qdisc ingress ffff:")
	require.Contains(t, f, fmt.Sprintf("pref %d u32", FilterPriority))
	require.Contains(t, f, "mirred (Egress Redirect to device "+tapName+")")
	tf := ip(t, "tc", "-n", ns, "filter", "show", "dev", tapName, "ingress")
	require.Contains(t, tf, "mirred (Egress Redirect to device eth0)")
	link := ip(t, "-n", ns, "link", "show", tapName)
	require.Contains(t, link, fmt.Sprintf("mtu %d", engineMTU), "the tap has eth0's MTU")
	require.Contains(t, link, "UP")
}

// TestPlumbCarriesFrames connects eth0 to a tap, and frames go both
// ways between the tap's file and the far end of eth0's veth; then
// nothing is left.
func TestPlumbCarriesFrames(t *testing.T) {
	mustBeRoot(t)
	e := newEngineNet(t)
	host := hostLinks(t)

	tp, p, err := Plumb(e.nsPath, "eth0", "")
	require.NoError(t, err)
	require.Equal(t, Plumbing{Namespace: e.nsPath, Interface: "eth0", Tap: TapName, Priority: FilterPriority, AddedQdisc: true}, *p)
	plumbed(t, e.ns, TapName, true)
	threadsAtHome(t)

	peer := packetSocket(t, e.peerPath, "peer0")
	// The guest's frame: written on the tap, out of eth0, into peer0.
	hdr := make([]byte, tap.HeaderLen)
	require.NoError(t, tp.WriteFrame([][]byte{hdr, testFrame(peerMAC, engineMAC, "from the guest")}))
	got := readTestFrame(t, peer, "from the guest")
	require.Equal(t, []byte(engineMAC), got[6:12], "the guest's source MAC, unchanged")

	// The network's frame: sent on peer0, into eth0, read on the tap.
	_, err = unix.Write(peer, testFrame(engineMAC, peerMAC, "from the network"))
	require.NoError(t, err)
	buf := make([]byte, 65536+tap.HeaderLen)
	stop := make(chan struct{})
	timer := time.AfterFunc(5*time.Second, func() { close(stop) })
	defer timer.Stop()
	for {
		n, err := tp.ReadFrame([][]byte{buf}, stop)
		require.NoError(t, err, "the frame from the network did not reach the tap")
		if isTestFrame(buf[tap.HeaderLen:n], "from the network") {
			break
		}
	}

	// The VMM ends: the tap goes with its file. Teardown removes the rest.
	require.NoError(t, tp.Close())
	require.NoError(t, Teardown(*p))
	plumbed(t, e.ns, TapName, false)
	require.NoError(t, Teardown(*p), "teardown is idempotent")
	threadsAtHome(t)
	require.Equal(t, host, hostLinks(t), "the host's namespace is unchanged")
}

func TestPlumbRefusesATakenInterface(t *testing.T) {
	mustBeRoot(t)
	e := newEngineNet(t)
	tp, p, err := Plumb(e.nsPath, "eth0", "")
	require.NoError(t, err)
	defer func() { tp.Close(); Teardown(*p) }()

	_, _, err = Plumb(e.nsPath, "eth0", "kilntap1")
	require.ErrorIs(t, err, ErrPlumbed)
	// The refusal left the first VM's plumbing as it was, and no tap.
	plumbed(t, e.ns, TapName, true)
	require.NotContains(t, ip(t, "-n", e.ns, "link"), "kilntap1")

	_, _, err = Plumb(e.nsPath, "eth9", "")
	require.ErrorContains(t, err, "find interface eth9")
	_, _, err = Plumb("/run/netns/kiln-no-such-namespace", "eth0", "")
	require.ErrorIs(t, err, ErrNoNamespace)
}

// TestTeardownAfterSIGKILL plumbs from another process, kills it with
// SIGKILL, and Teardown leaves nothing behind.
func TestTeardownAfterSIGKILL(t *testing.T) {
	mustBeRoot(t)
	e := newEngineNet(t)
	host := hostLinks(t)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KILN_HOSTNET_PLUMB="+e.nsPath)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var p Plumbing
	require.NoError(t, json.NewDecoder(bufio.NewReader(out)).Decode(&p), "the VMM's plumbing")
	plumbed(t, e.ns, TapName, true)

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	// The tap, its qdisc and filter went with the process; eth0's filter
	// stays, redirecting to nothing, until Teardown.
	require.NotContains(t, ip(t, "-n", e.ns, "link"), TapName)
	require.Contains(t, ip(t, "tc", "-n", e.ns, "filter", "show", "dev", "eth0", "ingress"), "mirred")

	require.NoError(t, Teardown(p))
	plumbed(t, e.ns, TapName, false)
	require.Equal(t, host, hostLinks(t), "the host's namespace is unchanged")
}

func TestTeardownWhatIsGone(t *testing.T) {
	mustBeRoot(t)
	require.NoError(t, Teardown(Plumbing{}), "nothing plumbed")
	require.NoError(t, Teardown(Plumbing{Namespace: "/run/netns/kiln-no-such-namespace", Interface: "eth0", Tap: TapName}))

	e := newEngineNet(t)
	tp, p, err := Plumb(e.nsPath, "eth0", "")
	require.NoError(t, err)
	// Teardown while the VMM still holds the tap: the tap goes too.
	require.NoError(t, Teardown(*p))
	plumbed(t, e.ns, TapName, false)
	tp.Close()

	// The engine removed the interface, then the namespace.
	ip(t, "-n", e.ns, "link", "del", "eth0")
	require.NoError(t, Teardown(*p))
	ip(t, "netns", "del", e.ns)
	require.NoError(t, Teardown(*p))
}
