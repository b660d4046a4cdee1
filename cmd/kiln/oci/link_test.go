package oci

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// guestDial connects as the vsock device does for a guest connecting to
// host port p.
func guestDial(t *testing.T, vsock string, p uint32) *net.UnixConn {
	t.Helper()
	c, err := net.Dial("unix", vsock+"_"+strconv.Itoa(int(p)))
	require.NoError(t, err)
	return c.(*net.UnixConn)
}

func TestLinkStreams(t *testing.T) {
	vsock := filepath.Join(t.TempDir(), "v")
	l, err := Listen(vsock, ControlPort, false)
	require.NoError(t, err)
	defer l.Close()
	var stdout, stderr bytes.Buffer
	l.Stdio(strings.NewReader("input\n"), &stdout, &stderr)

	ctl := guestDial(t, vsock, ControlPort)
	in := guestDial(t, vsock, ControlPort+contract.PortStdin)
	out := guestDial(t, vsock, ControlPort+contract.PortStdout)
	errc := guestDial(t, vsock, ControlPort+contract.PortStderr)
	ctl.Write(contract.MarshalControl(contract.Control{Op: contract.ControlReady}))
	_, err = l.Ready(nil, nil, 10*time.Second)
	require.NoError(t, err)

	require.NoError(t, l.Send(contract.Control{Op: contract.ControlStart}))
	line, err := bufio.NewReader(ctl).ReadBytes('\n')
	require.NoError(t, err)
	m, err := contract.UnmarshalControl(line)
	require.NoError(t, err)
	require.Equal(t, contract.ControlStart, m.Op)

	// stdin reaches the guest, then its end.
	b, err := io.ReadAll(in)
	require.NoError(t, err)
	require.Equal(t, "input\n", string(b))

	// Output: the host closes a stream once it has read it to its end,
	// which the guest waits for.
	out.Write([]byte("to stdout"))
	errc.Write([]byte("to stderr"))
	out.CloseWrite()
	errc.CloseWrite()
	for _, c := range []*net.UnixConn{out, errc} {
		n, err := c.Read(make([]byte, 1))
		require.Zero(t, n)
		require.Error(t, err)
	}
	l.WaitOutput(10 * time.Second)
	require.Equal(t, "to stdout", stdout.String())
	require.Equal(t, "to stderr", stderr.String())
}

func TestLinkSetupError(t *testing.T) {
	vsock := filepath.Join(t.TempDir(), "v")
	l, err := Listen(vsock, ControlPort, true)
	require.NoError(t, err)
	defer l.Close()
	ctl := guestDial(t, vsock, ControlPort)
	ctl.Write(contract.MarshalControl(contract.Control{Op: contract.ControlError, Error: `exec: "nope": executable file not found in $PATH`}))
	_, err = l.Ready(nil, nil, 10*time.Second)
	require.ErrorIs(t, err, ErrGuestSetup)
	require.Contains(t, err.Error(), "executable file not found")

	ended := make(chan struct{})
	close(ended)
	_, err = l.Ready(ended, nil, time.Minute)
	require.Error(t, err, "the VM ended")
}

func TestConsoleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	defer ln.Close()
	master, slave, err := OpenPty()
	require.NoError(t, err)
	defer master.Close()
	defer slave.Close()
	require.NoError(t, SendConsole(sock, master))

	c, err := ln.AcceptUnix()
	require.NoError(t, err)
	defer c.Close()
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	require.NoError(t, err)
	require.Equal(t, "/dev/ptmx", string(buf[:n]))
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	require.NoError(t, err)
	fds, err := unix.ParseUnixRights(&msgs[0])
	require.NoError(t, err)
	require.Len(t, fds, 1)
	got := os.NewFile(uintptr(fds[0]), "master")
	defer got.Close()
	// What the engine writes to the master comes out of the slave
	// unchanged: the host's side is raw.
	_, err = got.Write([]byte("a\rb\n"))
	require.NoError(t, err)
	b := make([]byte, 4)
	_, err = io.ReadFull(slave, b)
	require.NoError(t, err)
	require.Equal(t, "a\rb\n", string(b))
}

// A guest whose connect gave up after the vsock device had connected
// (Linux's 2 s connect timeout, on a loaded host) resets that connection,
// which the device closes, and connects again: the stream is the second
// connection. Each stream here gets a stray connection first, closed
// with nothing sent, as the device leaves it.
func TestLinkStrayConnections(t *testing.T) {
	vsock := filepath.Join(t.TempDir(), "v")
	l, err := Listen(vsock, ControlPort, false)
	require.NoError(t, err)
	defer l.Close()
	var stdout, stderr bytes.Buffer
	l.Stdio(strings.NewReader("input\n"), &stdout, &stderr)

	ctl := guestDial(t, vsock, ControlPort)
	var std []*net.UnixConn
	for _, p := range []uint32{contract.PortStdin, contract.PortStdout, contract.PortStderr} {
		guestDial(t, vsock, ControlPort+p).Close()
		std = append(std, guestDial(t, vsock, ControlPort+p))
	}
	// The guest reports ready after its streams connected: the input
	// flows from then on.
	ctl.Write(contract.MarshalControl(contract.Control{Op: contract.ControlReady}))
	_, err = l.Ready(nil, nil, 10*time.Second)
	require.NoError(t, err)
	in, out, errc := std[0], std[1], std[2]
	in.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(in)
	require.NoError(t, err)
	require.Equal(t, "input\n", string(b), "stdin on the live connection")

	out.Write([]byte("to stdout"))
	errc.Write([]byte("to stderr"))
	out.CloseWrite()
	errc.CloseWrite()
	for _, c := range []*net.UnixConn{out, errc} {
		// The host read the live stream to its end: the guest's wait ends.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(make([]byte, 1))
		require.Zero(t, n)
		require.ErrorIs(t, err, io.EOF)
	}
	l.WaitOutput(10 * time.Second)
	require.Equal(t, "to stdout", stdout.String())
	require.Equal(t, "to stderr", stderr.String())
}

// The same with a terminal: the input the stray connection did not take
// goes to the live one.
func TestLinkStrayTerminal(t *testing.T) {
	vsock := filepath.Join(t.TempDir(), "v")
	l, err := Listen(vsock, ControlPort, true)
	require.NoError(t, err)
	defer l.Close()
	stdin, typed := io.Pipe()
	var screen bytes.Buffer
	l.Stdio(stdin, &screen, nil)

	ctl := guestDial(t, vsock, ControlPort)
	guestDial(t, vsock, ControlPort+contract.PortStdin).Close()
	term := guestDial(t, vsock, ControlPort+contract.PortStdin)
	ctl.Write(contract.MarshalControl(contract.Control{Op: contract.ControlReady}))
	_, err = l.Ready(nil, nil, 10*time.Second)
	require.NoError(t, err)
	go typed.Write([]byte("ls\r"))
	got := make([]byte, 3)
	term.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadFull(term, got)
	require.NoError(t, err)
	require.Equal(t, "ls\r", string(got))
	term.Write([]byte("file\r\n"))
	term.Close()
	l.WaitOutput(10 * time.Second)
	require.Equal(t, "file\r\n", screen.String())
}
