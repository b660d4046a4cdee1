package share

import (
	"math"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// Tlopen and Tlcreate flags as 9P2000.L defines them (Linux
// include/net/9p/9p.h, P9_DOTL_*): the x86 open(2) values, whatever the
// host's architecture.
const (
	dotlAccMode = 0o3
	dotlNoAcc   = 0o3 // "open for ioctl only": not served
	dotlTrunc   = 0o1000
	dotlAppend  = 0o2000
	dotlDsync   = 0o10000
	dotlSync    = 0o4000000
)

// hostFlags keeps the open flags that mean something for a file kiln opens
// on the guest's behalf: the access mode, O_TRUNC, O_APPEND and the sync
// flags. O_CREAT and O_EXCL come from the operation, O_NOFOLLOW and
// O_CLOEXEC from kiln; the rest (O_DIRECT's alignment rules, O_NOATIME's
// ownership check, O_NONBLOCK, O_ASYNC) would only make the host's I/O on
// kiln's buffers fail.
func hostFlags(f p9.OpenFlags) (int, error) {
	d := uint32(f)
	if d&dotlAccMode == dotlNoAcc {
		return 0, linux.EINVAL
	}
	h := int(d & dotlAccMode)
	if d&dotlTrunc != 0 {
		h |= unix.O_TRUNC
	}
	if d&dotlAppend != 0 {
		h |= unix.O_APPEND
	}
	if d&dotlDsync != 0 {
		h |= unix.O_DSYNC
	}
	if d&dotlSync != 0 {
		h |= unix.O_SYNC
	}
	return h, nil
}

// writes reports whether flags would change the file.
func writes(flags int) bool {
	return flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0
}

// Open opens a regular file or a directory; anything else (a FIFO, a
// socket, a device node) stays unopened: the guest kernel serves those
// itself, and opening a host device for the guest would hand it the host's
// hardware.
func (f *file) Open(mode p9.OpenFlags) (p9.QID, uint32, error) {
	flags, err := hostFlags(mode)
	if err != nil {
		return p9.QID{}, 0, err
	}
	if f.share.readOnly && writes(flags) {
		return p9.QID{}, 0, linux.EROFS
	}
	if f.mode == unix.S_IFDIR && flags&unix.O_ACCMODE != unix.O_RDONLY {
		return p9.QID{}, 0, linux.EISDIR
	}
	if f.mode != unix.S_IFDIR && f.mode != unix.S_IFREG {
		return p9.QID{}, 0, linux.EPERM
	}
	var qid p9.QID
	err = f.with(func(fd int) error {
		if err := f.share.takeFDs(1); err != nil {
			return err
		}
		o, err := f.share.reopen(fd, f.mode, flags)
		if err != nil {
			f.share.fds.Add(-1)
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstat(o, &st); err != nil {
			f.share.closeFD(o)
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.open >= 0 { // the server opens a file once; be sure of it
			f.share.closeFD(o)
			return linux.EBUSY
		}
		f.open, f.flags = o, flags
		qid = f.share.qid(&st)
		return nil
	})
	// An iounit of 0 tells the client to use msize less the header.
	return qid, 0, err
}

// ReadAt reads from the open file. A short read is a valid reply.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, linux.EINVAL
	}
	var n int
	err := f.withOpen(func(fd int) error {
		var err error
		for {
			n, err = unix.Pread(fd, p, off)
			if err != unix.EINTR {
				break
			}
		}
		if n < 0 {
			n = 0
		}
		return err
	})
	return n, err
}

// WriteAt writes all of p to the open file, or fails.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if f.share.readOnly {
		return 0, linux.EROFS
	}
	if off < 0 || off > math.MaxInt64-int64(len(p)) {
		return 0, linux.EINVAL
	}
	done := 0
	err := f.withOpen(func(fd int) error {
		for done < len(p) {
			n, err := unix.Pwrite(fd, p[done:], off+int64(done))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if n == 0 {
				return unix.EIO
			}
			done += n
		}
		return nil
	})
	if done > 0 {
		return done, nil // a partial write is reported as such
	}
	return 0, err
}

// FSync makes what was written durable: fsync(2) of the host file, which
// reaches the disk, not just the host's page cache.
func (f *file) FSync() error {
	return f.withOpen(func(fd int) error {
		for {
			if err := unix.Fsync(fd); err != unix.EINTR {
				return err
			}
		}
	})
}

// Lock takes or drops a POSIX record lock as an open-file-description
// lock (F_OFD_SETLK) on the fid's open file: locks conflict between the
// guest's open files, and with host processes' locks, and go away when the
// fid is clunked. Kiln never waits for a lock: a conflict answers
// LockStatusBlocked, and the Linux client retries until it gets the lock
// (or the waiting process is interrupted). That keeps a contended lock
// from holding one of the device's request slots.
func (f *file) Lock(pid int, typ p9.LockType, flags p9.LockFlags, start, length uint64, client string) (p9.LockStatus, error) {
	lk, err := flockOf(typ, start, length)
	if err != nil {
		return p9.LockStatusError, err
	}
	err = f.withOpen(func(fd int) error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, lk) })
	switch err {
	case nil:
		return p9.LockStatusOK, nil
	case linux.EAGAIN, linux.EACCES:
		return p9.LockStatusBlocked, nil
	}
	return p9.LockStatusError, err
}

// getLock tests for a conflicting lock (Tgetlock, answered in local.go):
// it returns the lock that would block typ, or typ Unlock if none would.
func (f *file) getLock(typ p9.LockType, start, length uint64) (p9.LockType, uint64, uint64, int32, error) {
	lk, err := flockOf(typ, start, length)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if err := f.withOpen(func(fd int) error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, lk) }); err != nil {
		return 0, 0, 0, 0, err
	}
	t := p9.Unlock
	switch lk.Type {
	case unix.F_RDLCK:
		t = p9.ReadLock
	case unix.F_WRLCK:
		t = p9.WriteLock
	}
	return t, uint64(lk.Start), uint64(lk.Len), lk.Pid, nil
}

// flockOf builds fcntl's lock description; length 0 means "to the end".
func flockOf(typ p9.LockType, start, length uint64) (*unix.Flock_t, error) {
	lk := &unix.Flock_t{Whence: 0}
	switch typ {
	case p9.ReadLock:
		lk.Type = unix.F_RDLCK
	case p9.WriteLock:
		lk.Type = unix.F_WRLCK
	case p9.Unlock:
		lk.Type = unix.F_UNLCK
	default:
		return nil, linux.EINVAL
	}
	if start > math.MaxInt64 || length > math.MaxInt64 {
		return nil, linux.EINVAL
	}
	lk.Start, lk.Len = int64(start), int64(length)
	return lk, nil
}
