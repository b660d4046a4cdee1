package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// The container's file system tree, built under its root with Linux's
// mount API (fsopen, fsmount, open_tree, mount_setattr, move_mount): a
// new file system or a copy of a share's subtree is made as a detached
// mount, given its flags, and moved onto a mount point that inroot.go
// resolved inside the container's root. Nothing here takes a path from
// the container as a string the kernel would walk outside it.

const (
	containerRoot = "/kiln/root"   // the container's root file system
	sharesDir     = "/kiln/shares" // the other shares, by tag
)

// mountShareAt mounts the 9P share tag at dir with options.
func mountShareAt(tag, dir, options string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("share %s: %w", tag, err)
	}
	if err := unix.Mount(tag, dir, "9p", 0, options); err != nil {
		return fmt.Errorf("mount share %s: %w", tag, err)
	}
	return nil
}

// mountAttrs turns a mount's flags into MOUNT_ATTR_* bits.
func mountAttrs(m contract.ContainerMount) uint64 {
	var a uint64
	if m.ReadOnly {
		a |= unix.MOUNT_ATTR_RDONLY
	}
	if m.NoSuid {
		a |= unix.MOUNT_ATTR_NOSUID
	}
	if m.NoDev {
		a |= unix.MOUNT_ATTR_NODEV
	}
	if m.NoExec {
		a |= unix.MOUNT_ATTR_NOEXEC
	}
	return a
}

// setupMounts mounts each of the container's mounts in order, timing
// each in l.
func setupMounts(root int, mounts []contract.ContainerMount, l *laps) error {
	for _, m := range mounts {
		var err error
		if m.Type == "bind" {
			err = bindMount(root, m)
		} else {
			err = fsMount(root, m)
		}
		if err == nil && len(m.Propagation) > 0 {
			err = propagateIn(root, m.Destination, m.Propagation)
		}
		if err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, m.Destination, err)
		}
		l.lap("mount " + m.Destination)
	}
	return nil
}

// propagation are the MS_* propagation types, by config.json's names;
// an r- form changes the mounts under the mount too.
var propagation = map[string]struct {
	ms        uint64
	recursive bool
}{
	"shared": {unix.MS_SHARED, false}, "rshared": {unix.MS_SHARED, true},
	"slave": {unix.MS_SLAVE, false}, "rslave": {unix.MS_SLAVE, true},
	"private": {unix.MS_PRIVATE, false}, "rprivate": {unix.MS_PRIVATE, true},
	"unbindable": {unix.MS_UNBINDABLE, false}, "runbindable": {unix.MS_UNBINDABLE, true},
}

// propagateIn gives the mount on dst (inside root) each propagation type
// of types in turn, as runc does after a mount.
func propagateIn(root int, dst string, types []string) error {
	fd, err := openIn(root, dst, unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return propagate(fd, types)
}

// propagate gives the mount whose root is fd the propagation types.
func propagate(fd int, types []string) error {
	for _, t := range types {
		p, ok := propagation[t]
		if !ok {
			return fmt.Errorf("propagation %q: not one of shared, slave, private, unbindable or their r- forms", t)
		}
		flags := unix.AT_EMPTY_PATH
		if p.recursive {
			flags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(fd, "", uint(flags), &unix.MountAttr{Propagation: p.ms}); err != nil {
			return fmt.Errorf("make it %s: %w", t, err)
		}
	}
	return nil
}

// bindMount binds a file or directory of a share onto its destination.
func bindMount(root int, m contract.ContainerMount) error {
	share, err := unix.Open(path.Join(sharesDir, m.Tag), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("share %s: %w", m.Tag, err)
	}
	defer unix.Close(share)
	src := share
	if m.Path != "" {
		// The source is one name in the share's directory, and not a
		// link: the host names it, the container must not redirect it.
		how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
		if src, err = unix.Openat2(share, m.Path, &how); err != nil {
			return fmt.Errorf("source %s in share %s: %w", m.Path, m.Tag, err)
		}
		defer unix.Close(src)
	}
	dir, err := isDirFd(src)
	if err != nil {
		return err
	}
	var target int
	if dir {
		target, err = mkdirAllIn(root, m.Destination)
	} else {
		target, err = createFileIn(root, m.Destination)
	}
	if err != nil {
		return err
	}
	defer unix.Close(target)
	// rbind: the source's mounts come along, and the flags reach them.
	var recursive uint
	if m.Recursive {
		recursive = unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(src, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|recursive)
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	defer unix.Close(tree)
	if a := mountAttrs(m); a != 0 {
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|recursive, &unix.MountAttr{Attr_set: a}); err != nil {
			return fmt.Errorf("mount_setattr: %w", err)
		}
	}
	return moveMount(tree, target)
}

// fsMount mounts a new file system (tmpfs, proc, sysfs, devpts, mqueue)
// on its destination.
func fsMount(root int, m contract.ContainerMount) error {
	target, err := mkdirAllIn(root, m.Destination)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	attrs := mountAttrs(m)
	var fill func(int) error
	if m.CopyUp {
		fill = func(mnt int) error { return copyUp(root, m.Destination, mnt) }
	}
	return newMount(target, m.Type, m.Source, m.Data, attrs, fill)
}

// newMount creates a file system of type fstype with the options data,
// lets fill write into it while it is still detached, and mounts it on
// target with attrs.
func newMount(target int, fstype, source string, data []string, attrs uint64, fill func(int) error) error {
	fs, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fs)
	if source != "" {
		if err := unix.FsconfigSetString(fs, "source", source); err != nil {
			return fmt.Errorf("fsconfig source=%s: %w", source, err)
		}
	}
	for _, d := range data {
		k, v, ok := strings.Cut(d, "=")
		if ok {
			err = unix.FsconfigSetString(fs, k, v)
		} else {
			err = unix.FsconfigSetFlag(fs, k)
		}
		if err != nil {
			return fmt.Errorf("option %s: %w", d, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("create the file system: %w", err)
	}
	first := attrs
	if fill != nil {
		first &^= unix.MOUNT_ATTR_RDONLY // filled first, then made read-only
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(first))
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mnt)
	if fill != nil {
		if err := fill(mnt); err != nil {
			return err
		}
		if attrs != first {
			if err := unix.MountSetattr(mnt, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: attrs}); err != nil {
				return fmt.Errorf("mount_setattr: %w", err)
			}
		}
	}
	return moveMount(mnt, target)
}

// moveMount attaches the detached mount mnt on the mount point target.
func moveMount(mnt, target int) error {
	if err := unix.MoveMount(mnt, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// copyUp copies what the directory dst of the container held into the new
// file system mnt, which is about to cover it (tmpcopyup).
func copyUp(root int, dst string, mnt int) error {
	src, err := openIn(root, dst, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(src)
	if err := copyTree(src, mnt, 0); err != nil {
		return fmt.Errorf("copy %s up: %w", dst, err)
	}
	return nil
}

// copyTree copies the directory src into dst: directories, files, links,
// device nodes and FIFOs, with their owners and modes. Every call is
// relative to a directory descriptor and follows no link.
func copyTree(src, dst, depth int) error {
	if depth > 64 {
		return errors.New("directories nested too deep")
	}
	// A duplicate: d.Close below must not close the caller's src.
	dupfd, err := unix.Dup(src)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(dupfd), "dir")
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		perm := st.Mode & 0o7777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := unix.Mkdirat(dst, name, perm); err != nil {
				return err
			}
			s, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			t, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				unix.Close(s)
				return err
			}
			err = copyTree(s, t, depth+1)
			unix.Close(s)
			unix.Close(t)
			if err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := copyFile(src, dst, name, perm); err != nil {
				return err
			}
		case unix.S_IFLNK:
			target, err := readlinkat(src, name)
			if err != nil {
				return err
			}
			if err := unix.Symlinkat(target, dst, name); err != nil {
				return err
			}
		default: // devices, FIFOs, sockets
			if err := unix.Mknodat(dst, name, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		}
		if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst int, name string, perm uint32) error {
	in, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	r := os.NewFile(uintptr(in), name)
	defer r.Close()
	out, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return err
	}
	w := os.NewFile(uintptr(out), name)
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	if err := unix.Fchmod(out, perm); err != nil { // past the umask
		w.Close()
		return err
	}
	return w.Close()
}

func readlinkat(dir int, name string) (string, error) {
	b := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, b)
	if err != nil {
		return "", err
	}
	return string(b[:n]), nil
}

// makeDevices creates device nodes in the container's fresh /dev, and the
// links runc makes there.
func makeDevices(root int, devs []contract.ContainerDevice) error {
	for _, d := range devs {
		p := path.Clean("/" + d.Path)
		dir, base := path.Split(p)
		pfd, err := mkdirAllIn(root, dir)
		if err != nil {
			return err
		}
		mode := d.Mode & 0o7777
		switch d.Type {
		case "c", "u":
			mode |= unix.S_IFCHR
		case "b":
			mode |= unix.S_IFBLK
		case "p":
			mode |= unix.S_IFIFO
		default:
			unix.Close(pfd)
			return fmt.Errorf("device %s: type %q", d.Path, d.Type)
		}
		err = unix.Mknodat(pfd, base, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
		if err == nil {
			err = unix.Fchmodat(pfd, base, mode&0o7777, 0) // past the umask
		}
		if err == nil {
			err = unix.Fchownat(pfd, base, int(d.UID), int(d.GID), unix.AT_SYMLINK_NOFOLLOW)
		}
		unix.Close(pfd)
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	dev, err := openIn(root, "/dev", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	for _, l := range [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	} {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil && err != unix.EEXIST {
			return fmt.Errorf("link /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// maskPaths hides each path that exists: a directory under an empty
// read-only tmpfs, a file under the guest's /dev/null.
func maskPaths(root int, paths []string) error {
	for _, p := range paths {
		fd, err := openIn(root, p, unix.O_PATH)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		dir, err := isDirFd(fd)
		if err == nil {
			if dir {
				err = newMount(fd, "tmpfs", "tmpfs", []string{"size=0"}, unix.MOUNT_ATTR_RDONLY, nil)
			} else {
				err = bindGuestFile(fd, "/dev/null")
			}
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

// bindGuestFile binds one of the guest's own files (not the container's)
// onto target.
func bindGuestFile(target int, file string) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, file, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", file, err)
	}
	defer unix.Close(tree)
	return moveMount(tree, target)
}

// readonlyPaths makes each path that exists read-only: a read-only copy
// of its mount is put over it.
func readonlyPaths(root int, paths []string) error {
	for _, p := range paths {
		fd, err := openIn(root, p, unix.O_PATH)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		err = func() error {
			tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
			if err != nil {
				return fmt.Errorf("open_tree: %w", err)
			}
			defer unix.Close(tree)
			if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
				return fmt.Errorf("mount_setattr: %w", err)
			}
			return moveMount(tree, fd)
		}()
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("read-only %s: %w", p, err)
		}
	}
	return nil
}

// lookPathIn finds the executable name inside root as execve(2) will
// after the chroot: a name with a slash as it is (relative to cwd if not
// absolute), else the first executable regular file in the PATH of env.
func lookPathIn(root int, name, cwd string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			p = path.Join(cwd, p)
		}
		if err := executableIn(root, p); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	search := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	for _, dir := range strings.Split(search, ":") {
		if !path.IsAbs(dir) {
			continue
		}
		p := path.Join(dir, name)
		if executableIn(root, p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// executableIn checks that p is a regular file with an execute bit.
func executableIn(root int, p string) error {
	fd, err := openIn(root, p, unix.O_PATH)
	if err != nil {
		return errors.Unwrap(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}
