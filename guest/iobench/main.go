// Command iobench measures storage from inside the guest, for
// scripts/bench-io.sh, which reads the one line it prints.
//
// On a block device: sequential write and read throughput with 1 MiB
// requests, and random 4 KiB read IOPS, all with O_DIRECT so the guest's
// page cache is not what is measured:
//
//	iobench DEVICE [MiB]          (default 32 MiB, written then read back)
//	iobench seq_write_mib_s=... seq_read_mib_s=... rand_read_4k_iops=...
//
// On a file system (a 9p share, ext4 on a virtio disk): a file written in
// 1 MiB writes and fsynced, read back after the guest's caches are
// dropped, and a metadata job: create, stat and remove FILES empty files:
//
//	iobench -fs DIR [MiB] [FILES] (defaults 32 and 2000)
//	iobench fs_write_mib_s=... fs_read_mib_s=... meta_files_s=...
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
		fmt.Fprintln(os.Stderr, "usage: iobench DEVICE [MiB] | iobench -fs DIR [MiB] [FILES]")
		os.Exit(2)
	}
	if os.Args[1] == "-fs" {
		fsBench(os.Args[2:])
		return
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

// fsBench measures a file system: a file's throughput both ways, and the
// rate of file creations, stats and removals.
func fsBench(args []string) {
	if len(args) < 1 {
		fail("usage", fmt.Errorf("iobench -fs DIR [MiB] [FILES]"))
	}
	dir, mib, files := args[0], 32, 2000
	for i, p := range []*int{&mib, &files} {
		if len(args) > i+1 {
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 1 {
				fail("bad number", err)
			}
			*p = n
		}
	}
	buf := make([]byte, big)
	for i := range buf {
		buf[i] = byte(i)
	}
	path := dir + "/iobench.dat"
	start := time.Now()
	f, err := os.Create(path)
	if err != nil {
		fail("create", err)
	}
	for i := 0; i < mib; i++ {
		if _, err := f.Write(buf); err != nil {
			fail("write", err)
		}
	}
	if err := f.Sync(); err != nil {
		fail("fsync", err)
	}
	f.Close()
	write := float64(mib) / time.Since(start).Seconds()

	// Read what the host has, not the guest's page cache.
	unix.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
	start = time.Now()
	f, err = os.Open(path)
	if err != nil {
		fail("open", err)
	}
	for {
		n, err := f.Read(buf)
		if n == 0 || err != nil {
			break
		}
	}
	f.Close()
	read := float64(mib) / time.Since(start).Seconds()
	os.Remove(path)

	meta := dir + "/iobench.meta"
	if err := os.MkdirAll(meta, 0o755); err != nil {
		fail("mkdir", err)
	}
	start = time.Now()
	for i := 0; i < files; i++ {
		name := fmt.Sprintf("%s/f%05d", meta, i)
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			fail("create", err)
		}
		if _, err := os.Stat(name); err != nil {
			fail("stat", err)
		}
		if err := os.Remove(name); err != nil {
			fail("remove", err)
		}
	}
	rate := float64(files) / time.Since(start).Seconds()
	os.Remove(meta)
	fmt.Printf("iobench fs_write_mib_s=%.1f fs_read_mib_s=%.1f meta_files_s=%.0f\n", write, read, rate)
}
