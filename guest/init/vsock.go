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

// dialHost connects to the host's vsock port. The socket stays blocking:
// a stdio stream is handed to the container's process as it is.
func dialHost(port uint32) (*os.File, error) {
	var err error
	for try := 0; try < 50; try++ {
		var fd int
		fd, err = unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("vsock socket: %w", err)
		}
		err = unix.Connect(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_HOST, Port: port})
		if err == nil {
			return os.NewFile(uintptr(fd), fmt.Sprintf("vsock:%d", port)), nil
		}
		unix.Close(fd)
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("connect to host port %d: %w", port, err)
}

// control is the control connection to the host.
type control struct {
	f  *os.File
	mu sync.Mutex // one writer at a time
}

func dialControl(port uint32) (*control, error) {
	f, err := dialHost(port)
	if err != nil {
		return nil, err
	}
	return &control{f: f}, nil
}

// send writes one message.
func (c *control) send(m contract.Control) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.f.Write(contract.MarshalControl(m))
	return err
}

// serve reads the host's messages and calls handle for each, until the
// connection ends.
func (c *control) serve(handle func(contract.Control)) {
	s := bufio.NewScanner(c.f)
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
