package share

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// ErrBadShare says a directory cannot be shared.
var ErrBadShare = errors.New("cannot share directory")

// Share is one host directory served to a guest. It is safe for
// concurrent use; each Attach starts a new tree of files below the root.
type Share struct {
	path     string
	root     int // O_PATH descriptor of the shared directory
	proc     int // O_PATH descriptor of /proc/self/fd, to reopen files
	rootIno  uint64
	rootDev  uint64
	readOnly bool
	isRoot   bool  // kiln runs as root: it can give files to guest users
	view     *View // what the guest's root holds, if not the directory (view.go)

	maxFDs int64        // host descriptors the share's files may hold
	fds    atomic.Int64 // host descriptors they hold now

	probes probes // fids kiln looks up to answer requests itself (local.go)

	devMu sync.Mutex
	devs  map[uint64]uint64 // file system device -> qid path prefix

	// Requests and sessions hold the share while they use root and proc
	// (hold, release); Close closes those once the last one is done, so
	// that no descriptor number is closed, and reused, under a request.
	useMu   sync.Mutex
	users   int
	closing bool
}

// fdReserve is how many descriptors the shares leave for the rest of kiln.
const fdReserve = 1024

// New opens the directory at path as a share. A read-only share refuses
// every change to the host with EROFS.
func New(path string, readOnly bool) (*Share, error) {
	root, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("share %s: %w: %v", path, ErrBadShare, err)
	}
	s := &Share{path: path, root: root, proc: -1, readOnly: readOnly,
		isRoot: os.Geteuid() == 0, devs: map[uint64]uint64{}}
	var st unix.Stat_t
	if err := unix.Fstat(root, &st); err != nil {
		s.Close()
		return nil, fmt.Errorf("share %s: %w: %v", path, ErrBadShare, err)
	}
	s.rootIno, s.rootDev = st.Ino, st.Dev
	// The kernel must resolve names beneath the root for us.
	fd, err := openat2(root, ".", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("share %s: %w: openat2(2) with RESOLVE_BENEATH is needed (Linux 5.6 or later): %v", path, ErrBadShare, err)
	}
	unix.Close(fd)
	if s.proc, err = unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		s.Close()
		return nil, fmt.Errorf("share %s: %w: /proc is needed to reopen files: %v", path, ErrBadShare, err)
	}
	var lim unix.Rlimit
	s.maxFDs = 4096
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur > 2*fdReserve {
		s.maxFDs = int64(min(lim.Cur-fdReserve, 1<<24) / 2)
	}
	return s, nil
}

// Close refuses new requests and closes the share's own descriptors as
// soon as no request or session uses them: at once if none does, or when
// the last one ends. It does not wait: a request may block on the host (a
// FIFO, a lock) for as long as the guest waits for it, and a VM's teardown
// must not. Files still open in a session keep theirs until the session
// ends.
func (s *Share) Close() error {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	s.closing = true
	if s.users == 0 {
		s.closeFDs()
	}
	return nil
}

// hold marks a request or session as using the share's descriptors; it
// reports false once the share is closed. Each hold that succeeds is
// followed by one release.
func (s *Share) hold() bool {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	if s.closing {
		return false
	}
	s.users++
	return true
}

// release ends a hold; the last one after Close closes the descriptors.
func (s *Share) release() {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	s.users--
	if s.closing && s.users == 0 {
		s.closeFDs()
	}
}

// closeFDs closes root and proc; the caller holds useMu.
func (s *Share) closeFDs() {
	for _, fd := range []*int{&s.root, &s.proc} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// Path is the shared directory as given to New.
func (s *Share) Path() string { return s.path }

// ReadOnly reports whether the share refuses changes.
func (s *Share) ReadOnly() bool { return s.readOnly }

// Attach returns the root of the share as a new file (p9.Attacher): the
// shared directory, or the root of its view.
func (s *Share) Attach() (p9.File, error) {
	if s.view != nil {
		return &viewRoot{share: s}, nil
	}
	return s.rootFile()
}

// rootFile returns the shared directory as a new file.
func (s *Share) rootFile() (*file, error) {
	if err := s.takeFDs(1); err != nil {
		return nil, err
	}
	fd, err := unix.FcntlInt(uintptr(s.root), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		s.fds.Add(-1)
		return nil, errno(err)
	}
	return s.newFile(fd, -1, unix.S_IFDIR), nil
}

// takeFDs reserves n descriptors from the share's budget; a guest that
// holds too many fids gets ENFILE rather than exhausting kiln's.
func (s *Share) takeFDs(n int64) error {
	if s.fds.Add(n) > s.maxFDs {
		s.fds.Add(-n)
		return linux.ENFILE
	}
	return nil
}

// closeFD closes a descriptor counted in the budget.
func (s *Share) closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
		s.fds.Add(-1)
	}
}

// qidPath names a file uniquely: its inode number, with a prefix for any
// file system other than the root's (RESOLVE_NO_XDEV keeps walks on the
// root's mount, but one mount can span devices, as btrfs subvolumes do).
func (s *Share) qidPath(dev, ino uint64) uint64 {
	if dev == s.rootDev {
		return ino
	}
	s.devMu.Lock()
	defer s.devMu.Unlock()
	p, ok := s.devs[dev]
	if !ok {
		p = uint64(min(len(s.devs)+1, 0xff)) << 56
		s.devs[dev] = p
	}
	return ino ^ p
}

// errno turns an error from the host into the Linux errno the guest gets.
// (The library would map EPERM to EACCES and ENOTEMPTY to EEXIST through
// os.ErrPermission and os.ErrExist; a linux.Errno passes unchanged.)
func errno(err error) error {
	if err == nil {
		return nil
	}
	var le linux.Errno
	if errors.As(err, &le) {
		return le
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return linux.Errno(e)
	}
	return linux.EIO
}
