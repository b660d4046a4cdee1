// Command tcpcat connects to a TCP address, sends its standard input and
// prints what comes back: a very small netcat for the guest image, built
// on the Go net package that the image already carries.
//
// Usage: tcpcat HOST:PORT
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tcpcat HOST:PORT")
		os.Exit(2)
	}
	c, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcpcat: %v\n", err)
		os.Exit(1)
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	if _, err := io.Copy(os.Stdout, c); err != nil {
		fmt.Fprintf(os.Stderr, "tcpcat: %v\n", err)
		os.Exit(1)
	}
}
