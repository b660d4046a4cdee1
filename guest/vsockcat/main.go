// Command vsockcat talks over a virtio socket (AF_VSOCK) from the guest:
//
//	vsockcat connect PORT   connect to the host (CID 2) at PORT
//	vsockcat listen PORT    accept one connection from the host at PORT
//
// Either way it sends its standard input, then shuts down its sending side,
// and prints everything it receives until the peer closes.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

const hostCID = 2

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "connect" && os.Args[1] != "listen") {
		fmt.Fprintln(os.Stderr, "usage: vsockcat connect|listen PORT")
		os.Exit(2)
	}
	port, err := strconv.ParseUint(os.Args[2], 10, 32)
	if err != nil {
		fail("bad port", err)
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fail("socket", err)
	}
	if os.Args[1] == "connect" {
		// A signal (the Go runtime's preemption, SIGURG) interrupts a
		// vsock connect and cancels it (the socket is unconnected
		// again): connect again.
		for {
			err := unix.Connect(fd, &unix.SockaddrVM{CID: hostCID, Port: uint32(port)})
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				fail("connect", err)
			}
			break
		}
	} else {
		if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: uint32(port)}); err != nil {
			fail("bind", err)
		}
		if err := unix.Listen(fd, 1); err != nil {
			fail("listen", err)
		}
		c, _, err := unix.Accept(fd)
		for err == unix.EINTR {
			c, _, err = unix.Accept(fd)
		}
		if err != nil {
			fail("accept", err)
		}
		unix.Close(fd)
		fd = c
	}
	conn := os.NewFile(uintptr(fd), "vsock")
	done := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, conn)
		close(done)
	}()
	io.Copy(conn, os.Stdin)
	unix.Shutdown(fd, unix.SHUT_WR)
	<-done
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "vsockcat: %s: %v\n", what, err)
	os.Exit(1)
}
