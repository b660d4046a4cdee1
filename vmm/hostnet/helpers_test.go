package hostnet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// mustBeRoot skips, loudly, where the test cannot make namespaces.
func mustBeRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("SKIPPED, NOT ROOT: making network namespaces, veths and taps needs root; the host network plumbing was not tested")
	}
}

// ip runs ip(8) (or tc(8) with "tc" first) and returns its output.
func ip(t *testing.T, args ...string) string {
	t.Helper()
	cmd := "ip"
	if args[0] == "tc" {
		cmd, args = "tc", args[1:]
	}
	out, err := exec.Command(cmd, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", cmd, strings.Join(args, " "), out)
	return string(out)
}

// newNamespace makes a network namespace for the test (ip netns add)
// and removes it when the test ends. It returns its name and path.
func newNamespace(t *testing.T, role string) (name, path string) {
	t.Helper()
	name = fmt.Sprintf("kiln-hn-%d-%s", os.Getpid(), role)
	exec.Command("ip", "netns", "del", name).Run()
	ip(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name, filepath.Join("/run/netns", name)
}

// The engine's network in the tests, as netavark would make it: the
// container's namespace with eth0, one end of a veth, and the other end
// (peer0, standing in for the host's bridge) in a second namespace,
// never in the host's own.
var (
	engineMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x77, 0x00, 0x02}
	peerMAC   = net.HardwareAddr{0x02, 0x00, 0x00, 0x77, 0x00, 0x01}
)

const engineMTU = 1400

type engineNet struct {
	ns, nsPath     string // the container's
	peer, peerPath string // the other end's
}

func newEngineNet(t *testing.T) engineNet {
	t.Helper()
	var e engineNet
	e.ns, e.nsPath = newNamespace(t, "ctr")
	e.peer, e.peerPath = newNamespace(t, "peer")
	for _, args := range [][]string{
		{"-n", e.ns, "link", "add", "eth0", "address", engineMAC.String(), "mtu", fmt.Sprint(engineMTU),
			"type", "veth", "peer", "name", "peer0", "address", peerMAC.String(), "mtu", fmt.Sprint(engineMTU), "netns", e.peer},
		{"-n", e.ns, "link", "set", "lo", "up"},
		{"-n", e.ns, "link", "set", "eth0", "up"},
		{"-n", e.ns, "addr", "add", "10.77.0.2/24", "dev", "eth0"},
		{"-n", e.ns, "addr", "add", "fd77::2/64", "dev", "eth0", "nodad"},
		{"-n", e.ns, "route", "add", "default", "via", "10.77.0.1", "dev", "eth0"},
		{"-n", e.ns, "-6", "route", "add", "default", "via", "fd77::1", "dev", "eth0"},
		{"-n", e.ns, "route", "add", "10.99.0.0/16", "via", "10.77.0.1", "dev", "eth0"},
		{"-n", e.ns, "route", "add", "10.98.0.0/16", "dev", "eth0"},
		{"-n", e.peer, "link", "set", "peer0", "up"},
		{"-n", e.peer, "addr", "add", "10.77.0.1/24", "dev", "peer0"},
	} {
		ip(t, args...)
	}
	return e
}

// hostLinks lists the host namespace's interfaces, to check that
// nothing there changes.
func hostLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	require.NoError(t, err)
	var s []string
	for _, l := range links {
		a := l.Attrs()
		s = append(s, fmt.Sprintf("%d %s %s mtu %d", a.Index, a.Name, a.HardwareAddr, a.MTU))
	}
	slices.Sort(s)
	return s
}

// threadsAtHome checks that every thread of the process is in the
// process's own network namespace.
func threadsAtHome(t *testing.T) {
	t.Helper()
	home, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	for _, task := range tasks {
		ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err != nil {
			continue // the thread ended
		}
		require.Equal(t, home, ns, "thread %s is in another network namespace", task.Name())
	}
}

// The test frames carry the IEEE's local experimental EtherType, which
// no stack answers or sends on its own.
const testEtherType = 0x88b5

func testFrame(dst, src net.HardwareAddr, payload string) []byte {
	f := make([]byte, 60) // the shortest Ethernet frame, without its FCS
	copy(f, dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], testEtherType)
	copy(f[14:], payload)
	return f
}

func isTestFrame(f []byte, payload string) bool {
	return len(f) >= 14+len(payload) && binary.BigEndian.Uint16(f[12:]) == testEtherType &&
		bytes.Equal(f[14:14+len(payload)], []byte(payload))
}

// packetSocket opens a raw packet socket on dev in the namespace at
// nsPath: it reads every frame dev receives and sends frames out of it.
func packetSocket(t *testing.T, nsPath, dev string) int {
	t.Helper()
	var fd int
	require.NoError(t, InNamespace(nsPath, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Attrs().Index})
	}))
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000}))
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// readTestFrame reads from a packet socket until the test frame with
// payload comes, for at most five seconds.
func readTestFrame(t *testing.T, fd int, payload string) []byte {
	t.Helper()
	buf := make([]byte, 65536)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == nil && isTestFrame(buf[:n], payload) {
			return buf[:n]
		}
	}
	t.Fatalf("the frame %q did not arrive", payload)
	return nil
}
