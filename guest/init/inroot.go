package main

import (
	"errors"
	"fmt"
	"path"

	"golang.org/x/sys/unix"
)

// Paths inside a container's root. The root file system is the
// container's own, so it is untrusted input: a "/tmp" there may be a
// symbolic link to "/" or "../../etc", which a path walked by string
// concatenation would follow out of the container into the guest's own
// tree. Every path here is resolved by the kernel with openat2(2) and
// RESOLVE_IN_ROOT: ".." and symbolic links, absolute ones included, stay
// inside the directory given as the root, as if it were "/" (what runc
// does with its securejoin). New directories and files are made one
// component at a time with *at calls that never follow a link, and mounts
// are placed on the descriptors these return (move_mount with
// MOVE_MOUNT_T_EMPTY_PATH), never on a path.

// openIn opens p inside the directory root, as if root were "/".
func openIn(root int, p string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	rel := path.Clean("/" + p)[1:]
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(root, rel, &how)
		// EAGAIN: a rename raced with the walk; the kernel asks to retry.
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("open %s in the container: %w", p, err)
		}
		return fd, nil
	}
}

// mkdirAllIn makes the directory p inside root, with its missing parents
// (mode 0755, as runc makes mount points), and returns it opened O_PATH.
// A component that is a dangling symbolic link has its target made,
// resolved inside root, as the walk would follow it.
func mkdirAllIn(root int, p string) (int, error) {
	return mkdirAllLinks(root, p, 0)
}

// maxLinks bounds the dangling links one mkdirAllIn follows, as the
// kernel's 40 bounds a walk (ELOOP).
const maxLinks = 40

func mkdirAllLinks(root int, p string, links int) (int, error) {
	fd, err := openIn(root, p, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	p = path.Clean("/" + p)
	parent, base := path.Split(p)
	if base == "" {
		return -1, err
	}
	pfd, err := mkdirAllLinks(root, parent, links)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	// mkdirat never follows a link: if base is one, EEXIST, and the open
	// below resolves it inside the root.
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, fmt.Errorf("make %s in the container: %w", p, err)
	}
	fd, err = openIn(root, p, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	// base exists and yet p does not resolve: a link to nothing (yet).
	target, rerr := readlinkAt(pfd, base)
	if rerr != nil {
		return -1, err
	}
	if links >= maxLinks {
		return -1, fmt.Errorf("make %s in the container: %w", p, unix.ELOOP)
	}
	if !path.IsAbs(target) {
		target = path.Join(parent, target)
	}
	tfd, err := mkdirAllLinks(root, target, links+1)
	if err != nil {
		return -1, err
	}
	unix.Close(tfd)
	return openIn(root, p, unix.O_PATH|unix.O_DIRECTORY)
}

// readlinkAt reads the symbolic link name in the directory dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// createFileIn makes sure p exists inside root, creating an empty file if
// it does not (a file bind mount's mount point), and returns it opened
// O_PATH.
func createFileIn(root int, p string) (int, error) {
	fd, err := openIn(root, p, unix.O_PATH)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	p = path.Clean("/" + p)
	parent, base := path.Split(p)
	pfd, err := mkdirAllIn(root, parent)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	// O_EXCL|O_NOFOLLOW: a link in the way is not followed.
	f, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil && err != unix.EEXIST {
		return -1, fmt.Errorf("make %s in the container: %w", p, err)
	}
	if err == nil {
		unix.Close(f)
	}
	return openIn(root, p, unix.O_PATH)
}

// isDirFd reports whether fd is a directory.
func isDirFd(fd int) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}
