package share

import (
	"strconv"
	"strings"

	"github.com/hugelgupf/p9/linux"
	"golang.org/x/sys/unix"
)

// How every guest name is resolved: by the kernel, relative to a directory
// descriptor, never leaving the tree below it (RESOLVE_BENEATH: no "..",
// no absolute path), following no symlink at all (the guest follows its
// links itself) and no /proc magic link, and not crossing into another
// mount (see the package doc for why RESOLVE_NO_XDEV).
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS |
	unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// nameMax is the longest name a Linux file system takes (NAME_MAX).
const nameMax = 255

// checkName accepts exactly one path component.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return linux.EINVAL
	case strings.ContainsAny(name, "/\x00"):
		return linux.EINVAL
	case len(name) > nameMax:
		return linux.ENAMETOOLONG
	}
	return nil
}

// resolve opens the single component name below the directory dirfd with
// flags (O_PATH for a handle; O_CREAT|O_EXCL to create). The result is
// never a file reached through a symlink or outside dirfd's tree.
func resolve(dirfd int, name string, flags int, mode uint32) (int, error) {
	if err := checkName(name); err != nil {
		return -1, err
	}
	return openat2(dirfd, name, flags|unix.O_NOFOLLOW, mode)
}

// openat2 retries the kernel's EAGAIN (a rename raced with a
// RESOLVE_BENEATH lookup) and EINTR a few times.
func openat2(dirfd int, name string, flags int, mode uint32) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: resolveFlags}
	for try := 0; ; try++ {
		fd, err := unix.Openat2(dirfd, name, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && try < 16 {
			continue
		}
		if err != nil {
			return -1, errno(err)
		}
		return fd, nil
	}
}

// reopen turns the O_PATH descriptor fd of a regular file or directory
// into one open with flags. A directory reopens as "." below itself; a
// regular file through its /proc/self/fd magic link, which leads to the
// very file fd holds and, since that is not a symlink, no further.
func (s *Share) reopen(fd int, mode uint32, flags int) (int, error) {
	var r int
	var err error
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		r, err = unix.Openat(fd, ".", flags|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	case unix.S_IFREG:
		r, err = unix.Openat(s.proc, strconv.Itoa(fd), flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	default:
		return -1, linux.EPERM
	}
	if err != nil {
		return -1, errno(err)
	}
	return r, nil
}

// procName is fd's name in /proc/self/fd, for the calls that have no
// AT_EMPTY_PATH form on older kernels. Only for files that are not
// symlinks: through a magic link, a symlink would be followed.
func procName(fd int) string { return strconv.Itoa(fd) }
