package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// An initramfs is a cpio archive in the "newc" format: each file is a
// 110-byte header of ASCII hex fields, the NUL-terminated name and the
// file's data, each padded to 4 bytes, up to an entry named TRAILER!!!.
// unpackCpio extracts the directories, regular files and symlinks (device
// nodes are left to the container runtimes) under root. Names that would
// land outside root are refused.
func unpackCpio(r io.Reader, root string) error {
	br := bufio.NewReader(r)
	var off int64
	read := func(n int64) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(br, b)
		off += n
		return b, err
	}
	skipPad := func() error {
		if p := (4 - off%4) % 4; p > 0 {
			_, err := read(p)
			return err
		}
		return nil
	}
	for {
		hdr, err := read(110)
		if err != nil {
			return fmt.Errorf("cpio header at %d: %w", off-110, err)
		}
		if string(hdr[:6]) != "070701" && string(hdr[:6]) != "070702" {
			return fmt.Errorf("cpio header at %d: not a newc archive", off-110)
		}
		field := func(i int) (uint64, error) {
			return strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
		}
		mode, e1 := field(1)
		size, e2 := field(6)
		nameLen, e3 := field(11)
		if err := errors.Join(e1, e2, e3); err != nil {
			return fmt.Errorf("cpio header at %d: %w", off-110, err)
		}
		if nameLen == 0 || nameLen > 4096 || size > 1<<30 {
			return fmt.Errorf("cpio header at %d: bad name length or size", off-110)
		}
		nb, err := read(int64(nameLen))
		if err != nil {
			return fmt.Errorf("cpio name: %w", err)
		}
		name := strings.TrimRight(string(nb), "\x00")
		if err := skipPad(); err != nil {
			return err
		}
		if name == "TRAILER!!!" {
			return nil
		}
		data, err := read(int64(size))
		if err != nil {
			return fmt.Errorf("cpio data of %s: %w", name, err)
		}
		if err := skipPad(); err != nil {
			return err
		}
		clean := filepath.Clean("/" + name)
		if clean == "/" {
			continue
		}
		dst := filepath.Join(root, clean)
		if err := noSymlinkParents(root, clean); err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
		perm := os.FileMode(mode & 0o777)
		switch mode & 0o170000 {
		case 0o040000:
			err = os.MkdirAll(dst, perm|0o700)
		case 0o100000:
			if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
				err = os.WriteFile(dst, data, perm)
			}
		case 0o120000:
			if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
				err = os.Symlink(string(data), dst)
			}
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
	}
}

// noSymlinkParents refuses a path whose parent directories under root
// include a symlink: an archive could otherwise plant "etc -> /etc" and
// then write "etc/passwd" on the host.
func noSymlinkParents(root, clean string) error {
	dir := root
	parts := strings.Split(strings.TrimPrefix(filepath.Dir(clean), "/"), "/")
	for _, p := range parts {
		if p == "" {
			continue
		}
		dir = filepath.Join(dir, p)
		fi, err := os.Lstat(dir)
		if err != nil {
			return nil // not made yet: MkdirAll makes a real directory
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symlink in the archive; refusing to write through it", strings.TrimPrefix(dir, root))
		}
	}
	return nil
}
