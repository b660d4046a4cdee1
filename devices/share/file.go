package share

import (
	"sync"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// file is one host file as a p9.File: the server holds one per fid. It
// holds the file by an O_PATH descriptor (which names the file without
// opening it, so holding a FIFO or a device node has no effect) and, once
// opened, by a second descriptor open for I/O.
//
// The library calls Close when the last fid using the file goes; kiln's
// own requests (local.go) may still be using it. So the descriptors are
// reference counted: an operation takes them with acquire and gives them
// back with release, and Close closes them when the last user is done.
// A descriptor number is never used after it was closed (and so never
// after the kernel gave the number to another file).
type file struct {
	p9.DefaultWalkGetAttr // WalkGetAttr: ENOSYS, the library walks then stats

	share *Share
	mode  uint32 // S_IFMT bits: a file's type never changes

	mu      sync.Mutex
	path    int // O_PATH descriptor
	open    int // descriptor from Open or Create; -1 before
	flags   int // open's flags (O_ACCMODE and friends)
	users   int
	closing bool

	dir dirState // readdir's position (readdir.go)
}

var _ p9.File = (*file)(nil)

// newFile wraps descriptors already counted in the share's budget.
func (s *Share) newFile(path, open int, mode uint32) *file {
	return &file{share: s, mode: mode & unix.S_IFMT, path: path, open: open}
}

// acquire returns the file's descriptors for one operation; the caller
// must release them. open is -1 if the file is not open.
func (f *file) acquire() (path, open int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return -1, -1, linux.EBADF
	}
	f.users++
	return f.path, f.open, nil
}

func (f *file) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users--
	if f.closing && f.users == 0 {
		f.closeLocked()
	}
}

// Close drops the file; its descriptors close when no operation uses them.
func (f *file) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closing {
		f.closing = true
		if f.users == 0 {
			f.closeLocked()
		}
	}
	return nil
}

func (f *file) closeLocked() {
	f.share.closeFD(f.path)
	f.share.closeFD(f.open)
	f.path, f.open = -1, -1
}

// with runs fn with the O_PATH descriptor.
func (f *file) with(fn func(fd int) error) error {
	fd, _, err := f.acquire()
	if err != nil {
		return err
	}
	defer f.release()
	return errno(fn(fd))
}

// withOpen runs fn with the descriptor from Open; EBADF if not open.
func (f *file) withOpen(fn func(fd int) error) error {
	_, fd, err := f.acquire()
	if err != nil {
		return err
	}
	defer f.release()
	if fd < 0 {
		return linux.EBADF
	}
	return errno(fn(fd))
}

// Walk resolves names one at a time below f; no names clones f.
func (f *file) Walk(names []string) ([]p9.QID, p9.File, error) {
	var qids []p9.QID
	var nf *file
	err := f.with(func(dirfd int) error {
		if len(names) == 0 {
			if err := f.share.takeFDs(1); err != nil {
				return err
			}
			fd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				f.share.fds.Add(-1)
				return err
			}
			nf = f.share.newFile(fd, -1, f.mode)
			return nil
		}
		from := dirfd
		for i, name := range names {
			if err := f.share.takeFDs(1); err != nil {
				return err
			}
			fd, err := resolve(from, name, unix.O_PATH, 0)
			if from != dirfd {
				f.share.closeFD(from)
			}
			if err != nil {
				f.share.fds.Add(-1)
				return err
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				f.share.closeFD(fd)
				return err
			}
			qids = append(qids, f.share.qid(&st))
			if i == len(names)-1 {
				nf = f.share.newFile(fd, -1, st.Mode)
			}
			from = fd
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return qids, nf, nil
}

// GetAttr stats the file (fstat works on an O_PATH descriptor).
func (f *file) GetAttr(req p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	var st unix.Stat_t
	if err := f.with(func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		return p9.QID{}, p9.AttrMask{}, p9.Attr{}, err
	}
	attr, valid := statAttr(&st)
	return f.share.qid(&st), valid, attr, nil
}

// StatFS reports the host file system holding the file.
func (f *file) StatFS() (p9.FSStat, error) {
	var st p9.FSStat
	err := f.with(func(fd int) error {
		var err error
		st, err = statFS(fd)
		return err
	})
	return st, err
}

// statFS reports the host file system holding the file fd.
func statFS(fd int) (p9.FSStat, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return p9.FSStat{}, errno(err)
	}
	return p9.FSStat{
		Type:            uint32(st.Type),
		BlockSize:       uint32(st.Bsize),
		Blocks:          st.Blocks,
		BlocksFree:      st.Bfree,
		BlocksAvailable: st.Bavail,
		Files:           st.Files,
		FilesFree:       st.Ffree,
		FSID:            uint64(uint32(st.Fsid.Val[0])) | uint64(uint32(st.Fsid.Val[1]))<<32,
		NameLength:      uint32(st.Namelen),
	}, nil
}

// Readlink reads a symlink's target; kiln never follows it.
func (f *file) Readlink() (string, error) {
	var target string
	err := f.with(func(fd int) error {
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return err
		}
		target = string(buf[:n])
		return nil
	})
	return target, err
}

// Renamed needs nothing: a file is its descriptor, not its name.
func (f *file) Renamed(newDir p9.File, newName string) {}

// Rename is never called by the server (it calls RenameAt).
func (f *file) Rename(newDir p9.File, newName string) error { return linux.ENOSYS }
