package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// netns makes a network namespace with a tap kt0 whose host side is
// 10.0.2.1/24, and removes it when the test ends.
func netns(t *testing.T) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("SKIPPED, NOT ROOT: creating a network namespace and a tap needs root; the network test did not run")
	}
	ns := fmt.Sprintf("kiln-test-%d", os.Getpid())
	exec.Command("ip", "netns", "del", ns).Run()
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "tuntap", "add", "kt0", "mode", "tap"},
		{"-n", ns, "addr", "add", "10.0.2.1/24", "dev", "kt0"},
		{"-n", ns, "link", "set", "kt0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return ns
}

// listenIn opens a TCP listener inside network namespace ns. The socket
// is made by a thread that entered the namespace; that thread then ends
// with its goroutine, and the listener keeps working from anywhere.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		l, err := net.Listen("tcp", addr)
		ch <- result{l, err}
	}()
	r := <-ch
	require.NoError(t, r.err)
	t.Cleanup(func() { r.l.Close() })
	return r.l
}

// TestGuestNetwork boots a guest on a tap in a network namespace: the
// guest's init configures eth0 from --net, pings the host side, and
// fetches a file over TCP from a server the test runs in the namespace.
func TestGuestNetwork(t *testing.T) {
	t.Parallel()
	k, i := guestFiles(t)
	ns := netns(t)
	const file = "a file served by the host over TCP\n"
	l := listenIn(t, ns, "10.0.2.1:0")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(file))
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	script := fmt.Sprintf("ping -c 2 10.0.2.1 && tcpcat 10.0.2.1:%d", port)
	r := runCommand(t, "", "ip", "netns", "exec", ns, kilnBinary, "run", "--kernel", k, "--initrd", i,
		"--net", "tap=kt0,ip=10.0.2.2/24,gw=10.0.2.1", "--", "sh", "-c", script)
	logConsole(t, r)
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "64 bytes from 10.0.2.1")
	require.True(t, strings.HasSuffix(r.stdout, file), "the file arrives whole at the end of the output")
}

func TestNetErrors(t *testing.T) {
	_, i := guestFiles(t)
	r := kiln(t, "", "run", "--initrd", i, "--kernel", strings.TrimSuffix(i, "initramfs.cpio")+"vmlinux", "--net", "tap=kiln-notap", "--", "true")
	require.Equal(t, ExitNoInput, r.code, r.stderr)
	require.Contains(t, r.stderr, "tap kiln-notap does not exist (create it with: ip tuntap add")
	r = kiln(t, "", "run", "--net", "mac=02:00:00:00:00:01", "--", "true")
	require.Equal(t, ExitUsage, r.code, r.stderr)
}
