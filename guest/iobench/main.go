// Command iobench measures a block device from inside the guest: sequential
// write and read throughput with 1 MiB requests, and random 4 KiB read
// IOPS, all with O_DIRECT so the guest's page cache is not what is measured.
// It prints one line that scripts/bench-io.sh reads:
//
//	iobench seq_write_mib_s=... seq_read_mib_s=... rand_read_4k_iops=...
//
// Usage: iobench DEVICE [MiB]   (default 32 MiB, written then read back)
package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

const (
	big        = 1 << 20
	small      = 4 << 10
	randReads  = 2000
	randWindow = 2 * time.Second
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: iobench DEVICE [MiB]")
		os.Exit(2)
	}
	mib := 32
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n < 1 {
			fail("bad size", err)
		}
		mib = n
	}
	fd, err := unix.Open(os.Args[1], unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		fail("open "+os.Args[1], err)
	}
	// O_DIRECT wants aligned buffers: an anonymous mapping is page-aligned.
	buf, err := unix.Mmap(-1, 0, big, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fail("mmap", err)
	}
	for i := range buf {
		buf[i] = byte(i)
	}

	start := time.Now()
	for i := 0; i < mib; i++ {
		if _, err := unix.Pwrite(fd, buf, int64(i)*big); err != nil {
			fail("write", err)
		}
	}
	if err := unix.Fdatasync(fd); err != nil {
		fail("fdatasync", err)
	}
	write := float64(mib) / time.Since(start).Seconds()

	start = time.Now()
	for i := 0; i < mib; i++ {
		if _, err := unix.Pread(fd, buf, int64(i)*big); err != nil {
			fail("read", err)
		}
	}
	read := float64(mib) / time.Since(start).Seconds()

	blocks := int64(mib) * big / small
	start = time.Now()
	n := 0
	for ; n < randReads && time.Since(start) < randWindow; n++ {
		if _, err := unix.Pread(fd, buf[:small], rand.Int64N(blocks)*small); err != nil {
			fail("random read", err)
		}
	}
	iops := float64(n) / time.Since(start).Seconds()
	fmt.Printf("iobench seq_write_mib_s=%.1f seq_read_mib_s=%.1f rand_read_4k_iops=%.0f\n", write, read, iops)
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "iobench: %s: %v\n", what, err)
	os.Exit(1)
}
