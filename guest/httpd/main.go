// Command httpd is a small JSON HTTP service for the guest image: the
// workload of kiln bench's network runs, started in a container made
// from kiln's initramfs. GET / answers a small JSON object naming the
// host and the time, GET /health answers that the service is up, GET
// /random answers 16 bytes read from /dev/urandom and the address asked.
//
// It speaks just enough HTTP/1.1 for that (server.go), on the net
// package alone: Go's net/http links TLS, HTTP/2 and their
// cryptography, 2.7 MiB more in the initramfs, which every cold boot of
// every kiln VM unpacks in the guest's kernel (about 3 s more here, on a
// software-nested KVM).
//
// It stops on SIGTERM or SIGINT, as a container's process is asked to:
// it stops accepting, lets the requests under way finish (for at most
// five seconds) and exits 0.
//
// Usage: httpd [-addr :8080]
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "the address to listen on, HOST:PORT")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpd: %v\n", err)
		os.Exit(1)
	}
	host, _ := os.Hostname()
	s := newServer(l, host, time.Now)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		s.shutdown(5 * time.Second)
	}()
	if err := s.serve(); err != nil {
		fmt.Fprintf(os.Stderr, "httpd: %v\n", err)
		os.Exit(1)
	}
}
