// Command httpd is a small JSON HTTP service for the guest image: the
// workload of kiln bench's network runs, started in a container made
// from kiln's initramfs. GET / answers a small JSON object naming the
// host and the time, GET /health answers that the service is up.
//
// It stops on SIGTERM or SIGINT, as a container's process is asked to:
// it stops accepting, lets the requests under way finish (for at most
// five seconds) and exits 0.
//
// Usage: httpd [-addr :8080]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "the address to listen on, HOST:PORT")
	flag.Parse()
	if err := serve(*addr); err != nil {
		fmt.Fprintf(os.Stderr, "httpd: %v\n", err)
		os.Exit(1)
	}
}

// serve answers on addr until SIGTERM or SIGINT.
func serve(addr string) error {
	host, _ := os.Hostname()
	srv := &http.Server{
		Addr:              addr,
		Handler:           newHandler(host, time.Now),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	failed := make(chan error, 1)
	go func() { failed <- srv.ListenAndServe() }()
	select {
	case err := <-failed:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
