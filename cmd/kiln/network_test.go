package main

// Container VMs on the engine's network, and network devices in
// snapshots, with real guests: what users do with them. The container
// tests run the image built from kiln's initramfs, whose /bbin/httpd is
// a small JSON HTTP service, and reach it from the host; the others use
// network namespaces of the test's own, so that nothing of the host's
// own network changes.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/config"
)

// serveDeadline bounds the wait for a service's first answer: a restore
// and the container's setup, the process's exec and the first packets,
// all emulated kernel work on a kvm-pvm host (and first a cold boot for
// the warm snapshot), while other tests boot guests too.
const serveDeadline = 4 * time.Minute

// dialIn connects to addr from the network namespace ns ("" for this
// process's own). The socket is made by a thread that entered the
// namespace; that thread then ends with its goroutine, and the
// connection works from anywhere.
func dialIn(ns, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		if ns != "" {
			runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
			f, err := os.Open("/run/netns/" + ns)
			if err != nil {
				ch <- result{err: err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{err: err}
				return
			}
		}
		c, err := net.DialTimeout(network, addr, 5*time.Second)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// getIn does one HTTP GET of url from the namespace ns.
func getIn(ns, url string) (int, string, error) {
	client := &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
				return dialIn(ns, network, addr)
			},
		},
	}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitHTTP polls url from ns until it answers 200 and returns the time
// from since to that answer, and the answer.
func waitHTTP(t *testing.T, ns, url string, since time.Time) (time.Duration, string) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(serveDeadline); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		code, body, err := getIn(ns, url)
		if err == nil && code == http.StatusOK {
			return time.Since(since), body
		}
		last = fmt.Errorf("status %d, %v", code, err)
	}
	t.Fatalf("%s (from namespace %q) never answered 200 within %v: %v", url, ns, serveDeadline, last)
	return 0, ""
}

// httpdAnswer is what httpd's GET / says.
type httpdAnswer struct {
	Hello string `json:"hello"`
	Host  string `json:"host"`
}

func requireHttpd(t *testing.T, body string) httpdAnswer {
	t.Helper()
	var a httpdAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &a), body)
	require.NotEmpty(t, a.Hello, body)
	return a
}

// ipOut runs ip(8) (tc(8) with "tc" first) and returns its output.
func ipOut(t *testing.T, args ...string) string {
	t.Helper()
	cmd := "ip"
	if args[0] == "tc" {
		cmd, args = "tc", args[1:]
	}
	out, err := exec.Command(cmd, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", cmd, strings.Join(args, " "), out)
	return string(out)
}

// mustBeRootForNet skips, loudly, where namespaces cannot be made.
func mustBeRootForNet(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("SKIPPED, NOT ROOT: network namespaces, veths and taps need root; the container network tests did not run")
	}
}

// testNetns makes a network namespace named kiln-nw-PID-role, with lo
// up, and removes it when the test ends.
func testNetns(t *testing.T, role string) string {
	t.Helper()
	ns := fmt.Sprintf("kiln-nw-%d-%s", os.Getpid(), role)
	exec.Command("ip", "netns", "del", ns).Run()
	ipOut(t, "netns", "add", ns)
	ipOut(t, "-n", ns, "link", "set", "lo", "up")
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return ns
}

// tapNetns makes a namespace with a tap kt0 whose host side is
// 10.0.N.1/24, for a VM at 10.0.N.2.
func tapNetns(t *testing.T, role string, n int) string {
	t.Helper()
	ns := testNetns(t, role)
	ipOut(t, "-n", ns, "tuntap", "add", "kt0", "mode", "tap")
	ipOut(t, "-n", ns, "addr", "add", fmt.Sprintf("10.0.%d.1/24", n), "dev", "kt0")
	ipOut(t, "-n", ns, "link", "set", "kt0", "up")
	return ns
}

// engineNet is a container's network as an engine makes it, in
// namespaces of the test's own: the container's namespace ctr with eth0
// at 10.77.N.2/24, one end of a veth whose other end (the engine's
// bridge, here) is 10.77.N.1/24 in the namespace br.
type engineNet struct {
	ctr, br string
	mac     string
	ip      string // the container's address
}

func newEngineNet(t *testing.T, role string, n int) engineNet {
	t.Helper()
	e := engineNet{ctr: testNetns(t, role), br: testNetns(t, role+"br"),
		mac: fmt.Sprintf("02:00:00:77:%02x:02", n), ip: fmt.Sprintf("10.77.%d.2", n)}
	for _, args := range [][]string{
		{"-n", e.ctr, "link", "add", "eth0", "address", e.mac, "type", "veth", "peer", "name", "br0", "netns", e.br},
		{"-n", e.ctr, "link", "set", "eth0", "up"},
		{"-n", e.ctr, "addr", "add", e.ip + "/24", "dev", "eth0"},
		{"-n", e.ctr, "route", "add", "default", "via", fmt.Sprintf("10.77.%d.1", n)},
		{"-n", e.br, "link", "set", "br0", "up"},
		{"-n", e.br, "addr", "add", fmt.Sprintf("10.77.%d.1/24", n), "dev", "br0"},
	} {
		ipOut(t, args...)
	}
	return e
}

// kilnLeft says what of kiln's is in the container's namespace: its
// tap, an ingress qdisc on eth0, filters there.
func (e engineNet) kilnLeft(t *testing.T) (tap, qdisc, filter bool) {
	t.Helper()
	links := ipOut(t, "-n", e.ctr, "link")
	qd := ipOut(t, "tc", "-n", e.ctr, "qdisc", "show", "dev", "eth0")
	f := ipOut(t, "tc", "-n", e.ctr, "filter", "show", "dev", "eth0", "ingress")
	return strings.Contains(links, "kilntap0"), strings.Contains(qd, "ingress"), strings.TrimSpace(f) != ""
}

// hostNet lists the host namespace's links, addresses, routes and
// qdiscs, to check that nothing of them changes.
func hostNet(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{{"-o", "link"}, {"-o", "addr"}, {"route"}, {"tc", "qdisc"}} {
		out := ipOut(t, args...)
		lines := strings.Split(out, "\n")
		// Other tests' podman containers come and go on the host's
		// bridges: only lines about the rest are compared.
		lines = slices.DeleteFunc(lines, func(l string) bool {
			return strings.Contains(l, "veth") || strings.Contains(l, "podman") || strings.Contains(l, "cni")
		})
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}

// withNetns makes the bundle's config.json name the network namespace at
// path ("" for a new one; none at all with host).
func withNetns(t *testing.T, bundle, path string, host bool) {
	t.Helper()
	file := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var spec specs.Spec
	require.NoError(t, json.Unmarshal(data, &spec))
	var ns []specs.LinuxNamespace
	for _, n := range spec.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace {
			ns = append(ns, n)
		}
	}
	if !host {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
	}
	spec.Linux.Namespaces = ns
	data, err = json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, data, 0o644))
}

// TestOCINetwork: a container on a namespace the test made as an engine
// would serves HTTP to the far end of its veth; its guest's eth0 is the
// namespace's eth0 (MAC, address); the VMM's tap and filters are there
// while it runs. Killed with SIGKILL, the VMM's tap goes with it; kiln
// delete removes the filter and qdisc it left on eth0, and nothing of the
// host's own network changed.
func TestOCINetwork(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	mustBeRootForNet(t)
	host := hostNet(t)
	e := newEngineNet(t, "oci", 1)
	o := newOCIRuntime(t, "") // the default warm cache, the podman tests' too

	b := writeBundle(t, rootfs, "httpd", "-addr", ":8080")
	withNetns(t, b, "/run/netns/"+e.ctr, false)
	start := time.Now()
	pid := o.createOK("n1", b)
	tap, qdisc, filter := e.kilnLeft(t)
	require.True(t, tap && qdisc && filter, "the VMM's tap, joined to eth0")
	require.Contains(t, ipOut(t, "tc", "-n", e.ctr, "filter", "show", "dev", "eth0", "ingress"), "Egress Redirect to device kilntap0")
	require.Contains(t, ipOut(t, "tc", "-n", e.ctr, "filter", "show", "dev", "kilntap0", "ingress"), "Egress Redirect to device eth0")
	r := o.run("start", "n1")
	require.Equal(t, 0, r.code, r.stderr)
	took, body := waitHTTP(t, e.br, "http://"+e.ip+":8080/", start)
	t.Logf("create to the first HTTP 200 from the engine's side: %.1f s", took.Seconds())
	requireHttpd(t, body)
	// The address answered from the guest's eth0, with eth0's MAC: the
	// engine's side learned it by ARP.
	require.Contains(t, ipOut(t, "-n", e.br, "neigh", "show", e.ip), e.mac)

	r = o.run("kill", "n1", "KILL")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 128+int(syscall.SIGKILL), waitExit(t, pid))
	tap, qdisc, filter = e.kilnLeft(t)
	require.False(t, tap, "the tap went with the VMM")
	require.True(t, qdisc && filter, "eth0's filter stays until delete")
	r = o.run("delete", "n1")
	require.Equal(t, 0, r.code, r.stderr)
	tap, qdisc, filter = e.kilnLeft(t)
	require.False(t, tap || qdisc || filter, "nothing of kiln's is left in the namespace:\n%s\n%s",
		ipOut(t, "-n", e.ctr, "link"), ipOut(t, "tc", "-n", e.ctr, "qdisc"))
	require.Contains(t, ipOut(t, "-n", e.ctr, "addr", "show", "eth0"), e.ip+"/24", "the engine's interface is as it was")
	o.requireGone("n1", pid)

	// The same namespace serves the next container, which exits on its
	// own (SIGTERM: httpd stops and exits 0).
	pid = o.createOK("n2", b)
	require.Equal(t, 0, o.run("start", "n2").code)
	waitHTTP(t, e.br, "http://"+e.ip+":8080/health", time.Now())
	require.Equal(t, 0, o.run("kill", "n2", "TERM").code)
	require.Equal(t, 0, waitExit(t, pid))
	require.Equal(t, 0, o.run("delete", "n2").code)
	tap, qdisc, filter = e.kilnLeft(t)
	require.False(t, tap || qdisc || filter)
	require.Equal(t, host, hostNet(t), "the host's own network is unchanged")
}

// TestOCINetworkRefusals: a namespace path that does not exist, and no
// network namespace at all (the host's network), are create's errors,
// one line each, exit 1, leaving nothing; a namespace with only lo
// (podman --network none) and one without a path give a VM without a
// network device.
func TestOCINetworkRefusals(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	mustBeRootForNet(t)
	o := newOCIRuntime(t, "")
	for _, c := range []struct {
		name, path string
		host       bool
		msg        string
	}{
		{"missing", "/run/netns/kiln-no-such-netns", false, "the container's network namespace does not exist: /run/netns/kiln-no-such-netns"},
		{"host", "", true, "a VM cannot share the host's network stack"},
	} {
		b := writeBundle(t, rootfs, "true")
		withNetns(t, b, c.path, c.host)
		r := o.run("create", "--bundle", b, c.name)
		require.Equal(t, 1, r.code, "%s: %s", c.name, r.stderr)
		require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
		require.True(t, strings.HasPrefix(r.stderr, "kiln: "), r.stderr)
		require.Contains(t, r.stderr, c.msg)
		o.requireGone(c.name, 0)
	}

	// Only lo: no network device; the guest has no eth0.
	lo := testNetns(t, "lo")
	b := writeBundle(t, rootfs, "cat", "/proc/net/dev")
	withNetns(t, b, "/run/netns/"+lo, false)
	pid := o.createOK("lo", b)
	require.Equal(t, 0, o.run("start", "lo").code)
	require.Equal(t, 0, waitExit(t, pid))
	out, _ := o.output("lo")
	require.Contains(t, out, "lo:")
	require.NotContains(t, out, "eth0", "no network device")
	require.Equal(t, 0, o.run("delete", "lo").code)
	require.NotContains(t, ipOut(t, "-n", lo, "link"), "kilntap0", "no tap was made")
	require.NotContains(t, ipOut(t, "tc", "-n", lo, "qdisc"), "ingress")
}

// TestRestoreOnNewNetworks: kiln snapshot of a VM with a network device,
// then two clones restored from it at once, each on a tap of its own in a
// namespace of its own with an address of its own, each serving HTTP
// there; a restore given another number of taps than the snapshot has
// network devices is refused; and kiln run --warm --net takes its
// snapshot and restores on the tap given.
func TestRestoreOnNewNetworks(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	mustBeRootForNet(t)
	snapNS := tapNetns(t, "snap", 9)
	snap := filepath.Join(t.TempDir(), "snap")
	r := runCommand(t, "", "ip", "netns", "exec", snapNS, kilnBinary, "snapshot", "--out", snap, "--kernel", k, "--initrd", i, "--net", "tap=kt0")
	require.Equal(t, 0, r.code, r.stderr)

	// The clones: one snapshot, two namespaces, two addresses, two MACs.
	type clone struct {
		ns, ip, mac string
		cmd         *exec.Cmd
		out         strings.Builder
	}
	clones := []*clone{{ip: "10.0.11.2", mac: "02:00:00:00:0b:02"}, {ip: "10.0.12.2", mac: "02:00:00:00:0c:02"}}
	start := time.Now()
	for n, c := range clones {
		c.ns = tapNetns(t, fmt.Sprintf("clone%d", n), 11+n)
		c.cmd = exec.Command("ip", "netns", "exec", c.ns, kilnBinary, "run", "--restore", snap,
			"--net", fmt.Sprintf("tap=kt0,mac=%s,ip=%s/24,gw=10.0.%d.1", c.mac, c.ip, 11+n), "--", "httpd", "-addr", ":8080")
		c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
		require.NoError(t, c.cmd.Start())
		t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	}
	for _, c := range clones {
		took, body := waitHTTP(t, c.ns, "http://"+c.ip+":8080/", start)
		t.Logf("clone in %s: restore to the first HTTP 200 on %s: %.1f s", c.ns, c.ip, took.Seconds())
		requireHttpd(t, body)
		require.Contains(t, ipOut(t, "-n", c.ns, "neigh", "show", c.ip), c.mac, "the clone has the MAC given at its restore")
	}
	for _, c := range clones {
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, c := range clones {
		err := c.cmd.Wait()
		require.Equal(t, 130, c.cmd.ProcessState.ExitCode(), "interrupted: %v\n%s", err, c.out.String())
	}

	// Another number of taps than the snapshot has devices.
	for _, nets := range [][]string{nil, {"--net", "tap=kt0", "--net", "tap=kt1"}} {
		r := kiln(t, "", append(append([]string{"run", "--restore", snap}, nets...), "--", "true")...)
		require.Equal(t, ExitUsage, r.code, r.stderr)
		require.Contains(t, r.stderr, "the snapshot has 1: a restore gives each device it has a tap of its own")
		require.True(t, strings.HasPrefix(r.stderr, "kiln: "), r.stderr)
	}
	r = kiln(t, "", "snapshot", "--out", snap+"2", "--kernel", k, "--initrd", i, "--net", "tap=kt0,ip=10.0.0.2/24")
	require.Equal(t, ExitUsage, r.code, r.stderr)
	require.Contains(t, r.stderr, "ip= and gw= are each restored VM's own")

	// --warm --net: a snapshot of its own (taken on a tap of its own,
	// connected to nothing), then restored on kt0 with the address.
	warmNS := tapNetns(t, "warm", 13)
	r = runEnv(t, []string{"KILN_CACHE=" + t.TempDir()}, "", "ip", "netns", "exec", warmNS, kilnBinary, "run", "--warm", "--kernel", k, "--initrd", i,
		"--net", "tap=kt0,ip=10.0.13.2/24,gw=10.0.13.1", "--", "sh", "-c", "cat /sys/class/net/eth0/address; ping -c 1 10.0.13.1")
	logConsole(t, r)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "no warm snapshot of this VM yet")
	require.Contains(t, r.stdout, config.DefaultMAC("kt0").String(), "eth0 has the MAC of the tap given, not the snapshot's")
	require.Contains(t, r.stdout, "64 bytes from 10.0.13.1")
}

// runKilnNet is podman run with kiln as the runtime, on the network the
// arguments ask for (podman's default bridge without one).
func (p *podman) runKilnNet(args ...string) run {
	p.t.Helper()
	return p.runKilnNetDeadline(bootDeadline, args...)
}

// runKilnNetDeadline is runKilnNet with a deadline of its own.
func (p *podman) runKilnNetDeadline(d time.Duration, args ...string) run {
	p.t.Helper()
	full := append(append(append([]string{}, p.base...), "run", "--runtime", kilnBinary), podmanUlimits...)
	return runEnvDeadline(p.t, nil, d, "", "podman", append(full, args...)...)
}

// inspect returns podman inspect's --format for a container.
func (p *podman) inspect(name, format string) string {
	p.t.Helper()
	r := p.run("inspect", "--format", format, name)
	require.Equal(p.t, 0, r.code, r.stderr)
	return strings.TrimSpace(r.stdout)
}

// TestPodmanNetwork: what users do with podman and a network, kiln as
// the runtime: a published port served to the host, two containers on
// one podman network reaching each other by address and by name, a
// container reaching the host, and --network host refused with kiln's
// line.
func TestPodmanNetwork(t *testing.T) {
	t.Parallel()
	p := newPodman(t)
	mustBeRootForNet(t)

	t.Run("publish", func(t *testing.T) {
		start := time.Now()
		r := p.runKilnNet("-d", "--name", "kiln-web", "-p", "18080:8080", podmanImage, "httpd", "-addr", ":8080")
		require.Equal(t, 0, r.code, r.stderr)
		t.Logf("podman run -d: %.1f s", time.Since(start).Seconds())
		took, body := waitHTTP(t, "", "http://127.0.0.1:18080/", start)
		t.Logf("podman run -d -p 18080:8080 to the first HTTP 200 on localhost:18080: %.1f s", took.Seconds())
		requireHttpd(t, body)

		// The pieces docs/network.md shows, on a running container.
		netns := p.inspect("kiln-web", "{{.NetworkSettings.SandboxKey}}")
		require.True(t, strings.HasPrefix(netns, "/run/netns/"), netns)
		ns := filepath.Base(netns)
		require.Contains(t, ipOut(t, "-n", ns, "link"), "kilntap0")
		require.Contains(t, ipOut(t, "tc", "-n", ns, "filter", "show", "dev", "eth0", "ingress"), "Egress Redirect to device kilntap0")
		// The guest answered as eth0: the host's bridge learned eth0's
		// MAC address for the container's address.
		m := regexp.MustCompile(`link/ether ([0-9a-f:]{17})`).FindStringSubmatch(ipOut(t, "-n", ns, "link", "show", "eth0"))
		require.NotNil(t, m)
		ctrIP := p.inspect("kiln-web", "{{.NetworkSettings.IPAddress}}")
		require.Contains(t, ipOut(t, "neigh", "show", ctrIP), m[1])

		r = p.run("rm", "--force", "kiln-web")
		require.Equal(t, 0, r.code, r.stderr)
		_, err := os.Stat(netns)
		require.ErrorIs(t, err, os.ErrNotExist, "podman removed the namespace")
	})

	t.Run("container to container and to the host", func(t *testing.T) {
		netName := fmt.Sprintf("kiln-test-%d", os.Getpid())
		r := p.run("network", "create", netName)
		require.Equal(t, 0, r.code, r.stderr)
		t.Cleanup(func() { p.run("network", "rm", "--force", netName) })
		dns := p.run("network", "inspect", "--format", "{{.DNSEnabled}}", netName)
		gateway := strings.TrimSpace(p.run("network", "inspect", "--format", "{{range .Subnets}}{{.Gateway}}{{end}}", netName).stdout)
		require.NotEmpty(t, gateway)

		r = p.runKilnNet("-d", "--network", netName, "--name", "kiln-srv", "--hostname", "kiln-srv", podmanImage, "httpd", "-addr", ":8080")
		require.Equal(t, 0, r.code, r.stderr)
		t.Cleanup(func() { p.run("rm", "--force", "kiln-srv") })
		srvIP := p.inspect("kiln-srv", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
		require.NotEmpty(t, srvIP)

		// The host, as the client's peer: a listener on the host side of
		// the network's bridge.
		l, err := net.Listen("tcp", gateway+":0")
		require.NoError(t, err)
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("hello from the host\n"))
				c.Close()
			}
		}()
		hostAddr := l.Addr().String()

		// The client waits for the server (its first answer can take a
		// while), then asks by address, by name, and the host.
		get := `printf 'GET / HTTP/1.0\r\n\r\n' | tcpcat %s:8080`
		script := strings.Join([]string{
			fmt.Sprintf(`i=0; while [ $i -lt 120 ]; do `+get+` >/dev/null 2>&1 && break; sleep 1; i=$((i+1)); done`, srvIP),
			"echo BY-ADDRESS; " + fmt.Sprintf(get, srvIP),
			"echo BY-NAME; " + fmt.Sprintf(get, "kiln-srv"),
			"echo HOST; tcpcat " + hostAddr + " </dev/null",
		}, "\n")
		r = p.runKilnNet("--rm", "--network", netName, podmanImage, "sh", "-c", script)
		t.Logf("client:\n%s\n%s", r.stdout, r.stderr)
		require.Equal(t, 0, r.code, r.stderr)
		byAddr, rest, _ := strings.Cut(strings.SplitN(r.stdout, "BY-ADDRESS", 2)[1], "BY-NAME")
		require.Contains(t, byAddr, "HTTP/1.1 200 OK")
		require.Contains(t, byAddr, `"host":"kiln-srv"`)
		byName, host, _ := strings.Cut(rest, "HOST")
		if strings.TrimSpace(dns.stdout) == "true" {
			require.Contains(t, byName, "HTTP/1.1 200 OK", "podman's DNS (aardvark-dns) names the server")
		} else {
			t.Logf("podman's network has no DNS (aardvark-dns is not installed): by name not tested")
		}
		require.Contains(t, host, "hello from the host")
	})

	t.Run("host network refused", func(t *testing.T) {
		r := p.runKilnNet("--rm", "--network", "host", podmanImage, "true")
		require.NotEqual(t, 0, r.code)
		require.Contains(t, r.stderr, "a VM cannot share the host's network stack")
	})
}

// TestCtrCNI: ctr run --cni sets the network up in /proc/PID/ns/net of
// the task after kiln create. The VMM of a container that asks for a new
// network namespace runs in one of its own, with its VM's tap there, so
// the CNI plugins configure that one, not the host's; kiln start joins
// the interface they made to the tap, and the guest's eth0 takes its
// address before the process runs: the container reaches the bridge's
// gateway. ctr reads its CNI
// configuration from /etc/cni/net.d only: the test runs it in a mount
// namespace of its own where that directory is the test's, with a
// bridge of the test's own, which it removes.
func TestCtrCNI(t *testing.T) {
	t.Parallel()
	p := newPodman(t)
	mustBeRootForNet(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare is not installed")
	}
	plugins := "/usr/lib/cni"
	if _, err := os.Stat(filepath.Join(plugins, "bridge")); err != nil {
		t.Fatalf("the CNI plugins are not installed in %s (scripts/deps.sh installs containernetworking-plugins)", plugins)
	}
	c := newContainerd(t, p)
	dir, sock := c.dir, c.sock

	bridge := fmt.Sprintf("kcni%d", os.Getpid()%100000)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	netd := filepath.Join(dir, "net.d")
	require.NoError(t, os.Mkdir(netd, 0o755))
	cni := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "kiln-test", "plugins": [{"type": "bridge", "bridge": %q,
		"isGateway": true, "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": "10.99.77.0/24"}]]}}]}`,
		bridge, filepath.Join(dir, "ipam"))
	require.NoError(t, os.WriteFile(filepath.Join(netd, "10-kiln-test.conflist"), []byte(cni), 0o644))

	// ctr's CNI library caches results in /var/lib/cni/results: made if
	// missing, removed again if it is left empty.
	if _, err := os.Stat("/var/lib/cni"); os.IsNotExist(err) {
		t.Cleanup(func() { os.Remove("/var/lib/cni/results"); os.Remove("/var/lib/cni") })
	}
	host := hostNet(t)
	script := fmt.Sprintf(`mount --make-rprivate / && mount --bind %s /etc/cni/net.d && exec ctr --address %s run --rm --cni --runc-binary %s %s kiln-cni ping -c 1 10.99.77.1`,
		netd, sock, kilnBinary, podmanImage)
	r := runCommand(t, "", "unshare", "--mount", "sh", "-c", script)
	require.Equal(t, 0, r.code, "ctr run --cni: the container pings the bridge's gateway: %s %s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, "10.99.77.1")
	// The host's namespace has what CNI's bridge plugin makes there (its
	// bridge, the veth's host end), and nothing of kiln's.
	exec.Command("ctr", "--address", sock, "task", "kill", "-s", "KILL", "kiln-cni").Run()
	time.Sleep(time.Second)
	exec.Command("ctr", "--address", sock, "task", "rm", "kiln-cni").Run()
	exec.Command("ctr", "--address", sock, "container", "rm", "kiln-cni").Run()
	exec.Command("ip", "link", "del", bridge).Run()
	require.Equal(t, host, hostNet(t), "the host's own network is unchanged, CNI's bridge removed")
}
