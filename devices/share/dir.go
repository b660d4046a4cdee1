package share

import (
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// The operations on a directory that add or remove names. Each takes a
// single checked name relative to the directory's descriptor; none follows
// a symlink; each fails with EROFS on a read-only share.

// Create makes and opens a new regular file. O_EXCL always: Tlcreate makes
// a file, it never opens (or chowns) one that appeared meanwhile, and never
// creates through a dangling symlink.
func (f *file) Create(name string, mode p9.OpenFlags, perm p9.FileMode, uid p9.UID, gid p9.GID) (p9.File, p9.QID, uint32, error) {
	if f.share.readOnly {
		return nil, p9.QID{}, 0, linux.EROFS
	}
	flags, err := hostFlags(mode)
	if err != nil {
		return nil, p9.QID{}, 0, err
	}
	var nf *file
	var qid p9.QID
	err = f.with(func(dirfd int) error {
		if err := f.share.takeFDs(2); err != nil {
			return err
		}
		o, err := resolve(dirfd, name, flags|unix.O_CREAT|unix.O_EXCL, uint32(perm.Permissions()))
		if err != nil {
			f.share.fds.Add(-2)
			return err
		}
		fd, err := resolve(dirfd, name, unix.O_PATH, 0)
		if err != nil {
			f.share.closeFD(o)
			f.share.fds.Add(-1)
			return err
		}
		nf = f.share.newFile(fd, o, unix.S_IFREG)
		nf.flags = flags
		st, err := sameFile(o, fd)
		if err == nil {
			st, err = f.share.settle(fd, st, perm, uid, gid)
		}
		if err != nil {
			nf.Close()
			return err
		}
		qid = f.share.qid(st)
		return nil
	})
	if err != nil {
		return nil, p9.QID{}, 0, err
	}
	return nf, qid, 0, nil
}

// Mkdir makes a directory.
func (f *file) Mkdir(name string, perm p9.FileMode, uid p9.UID, gid p9.GID) (p9.QID, error) {
	return f.make(name, perm, uid, gid, func(dirfd int) error {
		return unix.Mkdirat(dirfd, name, uint32(perm.Permissions()))
	})
}

// Symlink makes a symlink; its target is the guest's to interpret.
func (f *file) Symlink(target, name string, uid p9.UID, gid p9.GID) (p9.QID, error) {
	if len(target) >= unix.PathMax {
		return p9.QID{}, linux.ENAMETOOLONG
	}
	return f.make(name, 0, uid, gid, func(dirfd int) error {
		return unix.Symlinkat(target, dirfd, name)
	})
}

// Mknod makes a FIFO, a socket or an empty regular file. Device nodes are
// refused: a guest's device node would be the host's device.
func (f *file) Mknod(name string, mode p9.FileMode, major, minor uint32, uid p9.UID, gid p9.GID) (p9.QID, error) {
	typ := uint32(mode) & unix.S_IFMT
	switch typ {
	case 0:
		typ = unix.S_IFREG
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFREG:
	default:
		if f.share.readOnly {
			return p9.QID{}, linux.EROFS
		}
		return p9.QID{}, linux.EPERM
	}
	return f.make(name, mode, uid, gid, func(dirfd int) error {
		return unix.Mknodat(dirfd, name, typ|uint32(mode.Permissions()), 0)
	})
}

// make runs mk to create name below f, then gives the new file its owner
// and exact mode and returns its qid.
func (f *file) make(name string, perm p9.FileMode, uid p9.UID, gid p9.GID, mk func(dirfd int) error) (p9.QID, error) {
	if f.share.readOnly {
		return p9.QID{}, linux.EROFS
	}
	if err := checkName(name); err != nil {
		return p9.QID{}, err
	}
	var qid p9.QID
	err := f.with(func(dirfd int) error {
		if err := mk(dirfd); err != nil {
			return err
		}
		if err := f.share.takeFDs(1); err != nil {
			return err
		}
		defer f.share.fds.Add(-1)
		fd, err := resolve(dirfd, name, unix.O_PATH, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		s, err := f.share.settle(fd, &st, perm, uid, gid)
		if err != nil {
			return err
		}
		qid = f.share.qid(s)
		return nil
	})
	return qid, err
}

// settle gives a new file the guest's owner (when kiln may) and exactly the
// mode asked for: the host's umask cut it at creation, and chown clears
// setuid and setgid, so the mode comes last. It returns the final stat.
func (s *Share) settle(fd int, st *unix.Stat_t, perm p9.FileMode, uid p9.UID, gid p9.GID) (*unix.Stat_t, error) {
	u, g := -1, -1
	if uid.Ok() && uid != p9.UID(st.Uid) {
		u = int(uid)
	}
	if gid.Ok() && gid != p9.GID(st.Gid) {
		g = int(gid)
	}
	if u != -1 || g != -1 {
		err := unix.Fchownat(fd, "", u, g, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && (s.isRoot || err != unix.EPERM) {
			return nil, err
		}
	}
	want := uint32(perm.Permissions())
	if st.Mode&unix.S_IFMT != unix.S_IFLNK && st.Mode&0o7777 != want || u != -1 || g != -1 {
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := s.chmod(fd, st.Mode, want); err != nil {
				return nil, err
			}
		}
		if err := unix.Fstat(fd, st); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// sameFile checks that two descriptors hold one inode (a name resolved
// twice could have been replaced between the calls) and returns its stat.
func sameFile(a, b int) (*unix.Stat_t, error) {
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		return nil, err
	}
	if err := unix.Fstat(b, &sb); err != nil {
		return nil, err
	}
	if sa.Dev != sb.Dev || sa.Ino != sb.Ino {
		return nil, linux.ESTALE
	}
	return &sb, nil
}

// Link makes a hard link to target, a file of this share, named name below
// f. AT_EMPTY_PATH links the very inode target holds (it needs
// CAP_DAC_READ_SEARCH); otherwise, for a file that is not a symlink, its
// /proc/self/fd link does the same.
func (f *file) Link(target p9.File, name string) error {
	if f.share.readOnly {
		return linux.EROFS
	}
	if err := checkName(name); err != nil {
		return err
	}
	t, ok := target.(*file)
	if !ok || t.share != f.share {
		return linux.EXDEV
	}
	return f.with(func(dirfd int) error {
		return t.with(func(tfd int) error {
			err := unix.Linkat(tfd, "", dirfd, name, unix.AT_EMPTY_PATH)
			if (err == unix.ENOENT || err == unix.EPERM) && t.mode != unix.S_IFLNK && t.mode != unix.S_IFDIR {
				err = unix.Linkat(f.share.proc, procName(tfd), dirfd, name, unix.AT_SYMLINK_FOLLOW)
			}
			return err
		})
	})
}

// RenameAt renames oldName below f to newName below newDir.
func (f *file) RenameAt(oldName string, newDir p9.File, newName string) error {
	if f.share.readOnly {
		return linux.EROFS
	}
	if err := checkName(oldName); err != nil {
		return err
	}
	if err := checkName(newName); err != nil {
		return err
	}
	nd, ok := newDir.(*file)
	if !ok || nd.share != f.share {
		return linux.EXDEV
	}
	return f.with(func(ofd int) error {
		return nd.with(func(nfd int) error {
			return unix.Renameat(ofd, oldName, nfd, newName)
		})
	})
}

// UnlinkAt removes name below f; AT_REMOVEDIR removes a directory.
func (f *file) UnlinkAt(name string, flags uint32) error {
	if f.share.readOnly {
		return linux.EROFS
	}
	if err := checkName(name); err != nil {
		return err
	}
	return f.with(func(dirfd int) error {
		return unix.Unlinkat(dirfd, name, int(flags)&unix.AT_REMOVEDIR)
	})
}
