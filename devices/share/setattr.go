package share

import (
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// SetAttr is Tsetattr: chown, chmod, truncate and utimes in one, applied
// in that order (chown clears setuid bits the mode may set again; truncate
// sets mtime the times may set again). Each acts on the descriptor the
// file is held by, never on a name.
func (f *file) SetAttr(valid p9.SetAttrMask, attr p9.SetAttr) error {
	if valid.Empty() {
		return nil
	}
	if f.share.readOnly {
		return linux.EROFS
	}
	return f.with(func(fd int) error {
		if valid.UID || valid.GID {
			u, g := -1, -1
			if valid.UID {
				u = int(attr.UID)
			}
			if valid.GID {
				g = int(attr.GID)
			}
			if err := unix.Fchownat(fd, "", u, g, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
		if valid.Permissions {
			if f.mode == unix.S_IFLNK {
				return linux.EOPNOTSUPP // Linux has no mode for a symlink
			}
			if err := f.share.chmod(fd, f.mode, uint32(attr.Permissions.Permissions())); err != nil {
				return err
			}
		}
		if valid.Size {
			if err := f.truncate(fd, attr.Size); err != nil {
				return err
			}
		}
		if valid.ATime || valid.MTime {
			ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
			if valid.ATime {
				ts[0] = timespec(valid.ATimeNotSystemTime, attr.ATimeSeconds, attr.ATimeNanoSeconds)
			}
			if valid.MTime {
				ts[1] = timespec(valid.MTimeNotSystemTime, attr.MTimeSeconds, attr.MTimeNanoSeconds)
			}
			err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
			if err == unix.EINVAL || err == unix.EBADF || err == unix.ENOENT {
				// A kernel without AT_EMPTY_PATH here: the magic link,
				// for anything but a symlink.
				if f.mode == unix.S_IFLNK {
					return linux.EOPNOTSUPP
				}
				err = unix.UtimesNanoAt(f.share.proc, procName(fd), ts, 0)
			}
			if err != nil {
				return err
			}
		}
		// A ctime alone needs nothing: the host sets it on any change.
		return nil
	})
}

// timespec is one Tsetattr time: the given one, or "now".
func timespec(given bool, sec, nsec uint64) unix.Timespec {
	if !given {
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	}
	if nsec >= 1e9 {
		nsec = 1e9 - 1
	}
	return unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}
}

// chmod sets the mode of the file fd holds. fchmodat2 (Linux 6.6) does
// it on the O_PATH descriptor; before that, the /proc/self/fd link does,
// which is safe because the file is not a symlink (callers check).
func (s *Share) chmod(fd int, mode, perm uint32) error {
	if mode&unix.S_IFMT == unix.S_IFLNK {
		return linux.EOPNOTSUPP
	}
	err := unix.Fchmodat(fd, "", perm, unix.AT_EMPTY_PATH)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS || err == unix.EINVAL {
		err = unix.Fchmodat(s.proc, procName(fd), perm, 0)
	}
	return err
}

// truncate sets a regular file's size, through the fid's open descriptor
// if it is open for writing, or a descriptor opened for the purpose.
func (f *file) truncate(fd int, size uint64) error {
	switch {
	case f.mode == unix.S_IFDIR:
		return linux.EISDIR
	case f.mode != unix.S_IFREG:
		return linux.EINVAL
	case int64(size) < 0:
		return linux.EFBIG
	}
	f.mu.Lock()
	open, flags := f.open, f.flags
	f.mu.Unlock()
	if open >= 0 && flags&unix.O_ACCMODE != unix.O_RDONLY {
		return unix.Ftruncate(open, int64(size))
	}
	w, err := f.share.reopen(fd, f.mode, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer unix.Close(w)
	return unix.Ftruncate(w, int64(size))
}
