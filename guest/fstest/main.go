// Command fstest exercises a file system from inside a kiln guest, for
// the tests of shared directories (kiln run --share): the system calls
// real work makes, each checked, one line of output per check ("ok NAME"
// or "FAIL NAME: why"). It exits 1 if any check failed.
//
// Usage: fstest DIR [N]   (DIR must be empty or not exist; fstest leaves
// what it made there for the host to check; N is how many files the
// metadata check makes, 200 by default)
//
//	fstest count DIR   prints how many entries DIR holds, from one
//	                   directory read and no stat per entry (ls stats each)
//	fstest journal FILE N
//	                   appends N numbered records to FILE, fsyncing each,
//	                   and prints "synced FILE K" once record K is on disk: a
//	                   test that kills the VM knows what must survive
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

var failed bool

func check(name string, err error) {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("ok %s\n", name)
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "journal" {
		var n int
		if _, err := fmt.Sscan(os.Args[3], &n); err != nil {
			fmt.Fprintln(os.Stderr, "fstest: N must be a number")
			os.Exit(2)
		}
		if err := journal(os.Args[2], n); err != nil {
			fmt.Fprintf(os.Stderr, "fstest: journal: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "count" {
		ents, err := os.ReadDir(os.Args[2])
		if err != nil {
			fmt.Fprintf(os.Stderr, "fstest: %v\n", err)
			os.Exit(1)
		}
		fmt.Println(len(ents))
		return
	}
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: fstest DIR [N]")
		os.Exit(2)
	}
	dir, n := os.Args[1], 200
	if len(os.Args) == 3 {
		if _, err := fmt.Sscan(os.Args[2], &n); err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "fstest: N must be a positive number")
			os.Exit(2)
		}
	}
	check("mkdir", os.MkdirAll(dir, 0o755))
	p := func(name string) string { return filepath.Join(dir, name) }

	check("write and fsync", writeSync(p("synced.txt"), []byte("flushed by the guest\n")))
	check("rename", func() error {
		if err := os.WriteFile(p("before.txt"), []byte("renamed"), 0o644); err != nil {
			return err
		}
		return os.Rename(p("before.txt"), p("after.txt"))
	}())
	check("symlink", func() error {
		if err := os.Symlink("after.txt", p("link")); err != nil {
			return err
		}
		b, err := os.ReadFile(p("link"))
		if err == nil && string(b) != "renamed" {
			err = fmt.Errorf("read %q through the link", b)
		}
		return err
	}())
	check("hard link", os.Link(p("after.txt"), p("hard.txt")))
	check("chmod", func() error {
		if err := os.WriteFile(p("mode.txt"), nil, 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p("mode.txt"), 0o600); err != nil {
			return err
		}
		st, err := os.Stat(p("mode.txt"))
		if err == nil && st.Mode().Perm() != 0o600 {
			err = fmt.Errorf("mode %v", st.Mode().Perm())
		}
		return err
	}())
	check("chown", func() error {
		if err := os.WriteFile(p("owned.txt"), nil, 0o644); err != nil {
			return err
		}
		if err := os.Chown(p("owned.txt"), 1000, 1000); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Stat(p("owned.txt"), &st); err != nil {
			return err
		}
		if st.Uid != 1000 || st.Gid != 1000 {
			return fmt.Errorf("owner %d:%d", st.Uid, st.Gid)
		}
		return nil
	}())
	check("nested directories", func() error {
		if err := os.MkdirAll(p("a/b/c"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p("a/b/c/deep.txt"), []byte("deep"), 0o644); err != nil {
			return err
		}
		return os.Remove(p("a/b/c/deep.txt"))
	}())
	check("unicode name", os.WriteFile(p("héllo-✓-日本.txt"), []byte("unicode"), 0o644))
	check("255-byte name", os.WriteFile(p(strings.Repeat("n", 251)+".txt"), []byte("long"), 0o644))
	check("mmap shared", mmapShared(p("mapped.bin")))
	check("truncate", func() error {
		if err := os.WriteFile(p("trunc.txt"), []byte("0123456789"), 0o644); err != nil {
			return err
		}
		if err := os.Truncate(p("trunc.txt"), 4); err != nil {
			return err
		}
		b, err := os.ReadFile(p("trunc.txt"))
		if err == nil && string(b) != "0123" {
			err = fmt.Errorf("read %q", b)
		}
		return err
	}())
	check("many files", manyFiles(p("many"), n))
	check("readdir", func() error {
		ents, err := os.ReadDir(dir)
		if err == nil && len(ents) < 10 {
			err = fmt.Errorf("%d entries", len(ents))
		}
		return err
	}())
	if failed {
		os.Exit(1)
	}
}

// writeSync writes b to path and fsyncs it: the host must have it on disk.
func writeSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mmapShared writes a file through a shared writable mapping, syncs it,
// and reads it back with read(2).
func mmapShared(path string) error {
	const size = 8192
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	want := bytes.Repeat([]byte("kiln"), size/4)
	copy(m, want)
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		unix.Munmap(m)
		return fmt.Errorf("msync: %w", err)
	}
	if err := unix.Munmap(m); err != nil {
		return err
	}
	got := make([]byte, size)
	if _, err := f.ReadAt(got, 0); err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("read back differs from what was mapped")
	}
	return nil
}

// manyFiles creates, stats and removes n files, then makes n more and
// leaves them for the host to count.
func manyFiles(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		name := filepath.Join(dir, fmt.Sprintf("gone-%05d", i))
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			return err
		}
		if _, err := os.Stat(name); err != nil {
			return err
		}
		if err := os.Remove(name); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("kept-%05d", i)), []byte{byte(i)}, 0o644); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(dir)
	if err == nil && len(ents) != n {
		err = fmt.Errorf("%d entries, want %d", len(ents), n)
	}
	return err
}

// RecordLen is the size of one journal record: "record 00000042\n".
const RecordLen = 16

// journal appends n records to path, each fsynced before it is reported.
func journal(path string, n int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for k := 1; k <= n; k++ {
		if _, err := fmt.Fprintf(f, "record %08d\n", k); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		fmt.Printf("synced %s %d\n", path, k)
	}
	return nil
}
