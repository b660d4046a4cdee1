package main

import (
	"bufio"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// Connections to the host over vsock, for a container job: the control
// connection and the stdio streams. init connects to the host (CID 2);
// kiln's vsock device hands each connection to the unix socket its VMM
// listens on for that port (docs/virtio.md).
//
// A VM restored from a snapshot first hears a transport reset from its
// vsock device, which resets the sockets the guest had. The driver
// handles it as soon as the guest runs (its interrupt is pending on the
// first instruction), long before init has read its job and mounted the
// container's file systems; and a connection refused or reset before it
// was used is tried again.

// connectTimeout bounds one connect to the host. Linux gives a vsock
// connect 2 s by default, counted in the guest's time, and a guest on a
// loaded host (kvm-pvm, several VMs per core) can take longer to handle
// the device's answer, which kiln's device sends at once. The connection
// the guest gave up on has reached the host by then; the guest resets it
// and connects again, and the host's streams take the next connection
// (cmd/kiln/oci/stdio.go), but each retry costs a round trip.
const connectTimeout = 2 * time.Minute

// dialHost connects to the host's vsock port. The socket stays blocking:
// a stdio stream is handed to the container's process as it is.
func dialHost(port uint32) (*os.File, error) {
	var err error
	for try := 0; try < 50; try++ {
		var f *os.File
		if f, err = connectHost(port); err == nil {
			return f, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("connect to host port %d: %w", port, err)
}

// connectHost makes one connection. The connect is non-blocking, and
// waited for with poll: a signal that interrupts a blocking vsock connect
// (init reaps children, SIGCHLD) abandons the connection, as a timeout
// does, where poll is only called again.
func connectHost(port uint32) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock socket: %w", err)
	}
	tv := unix.NsecToTimeval(connectTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.AF_VSOCK, unix.SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock connect timeout: %w", err)
	}
	err = unix.Connect(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_HOST, Port: port})
	if err == unix.EINPROGRESS {
		err = waitConnected(fd)
	}
	if err == nil {
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), fmt.Sprintf("vsock:%d", port)), nil
}

// waitConnected waits for a non-blocking connect to end, and returns how.
func waitConnected(fd int) error {
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		_, err := unix.Poll(pfd, -1) // the socket's connect timeout ends it
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return err
		}
		if soerr != 0 {
			return unix.Errno(soerr)
		}
		return nil
	}
}

// control is the control connection to the host: a stream made again
// after a checkpoint's pause (stdio.go), with one writer at a time.
type control struct {
	s  *hostStream
	mu sync.Mutex // one writer at a time
}

func dialControl(port uint32) (*control, error) {
	s, err := dialStream(port)
	if err != nil {
		return nil, err
	}
	return &control{s: s}, nil
}

// send writes one message.
func (c *control) send(m contract.Control) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.s.current().Write(contract.MarshalControl(m))
	return err
}

// serve reads the host's messages on the connection there is now and
// calls handle for each, until the connection ends.
func (c *control) serve(handle func(contract.Control)) {
	s := bufio.NewScanner(c.s.current())
	for s.Scan() {
		m, err := contract.UnmarshalControl(s.Bytes())
		if err != nil {
			fmt.Fprintf(os.Stderr, "kiln init: %v\n", err)
			continue
		}
		handle(m)
	}
}

// drain waits, after f was shut down for writing, until the host closed
// its side: then the host has read everything sent before. A host that
// never does is given up on after timeout.
func drain(f *os.File, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 512)
	fd := int(f.Fd())
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		if m, err := unix.Read(fd, buf); m <= 0 || err != nil {
			return
		}
	}
}
