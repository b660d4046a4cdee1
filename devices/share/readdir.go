package share

import (
	"encoding/binary"
	"sync"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// A directory listing in 9P is resumable by offset: each entry carries the
// offset of the next one, and the client asks for entries from an offset
// it was given. Kiln passes the host's own directory cookies through
// (getdents64's d_off, which lseek(2) on the directory accepts), so an
// offset stays good however many entries come before it, on any file
// system the host can seek directories in.
type dirState struct {
	mu  sync.Mutex // one listing at a time: seek and read go together
	pos int64      // the host descriptor's position (a cookie); 0 at open
}

// direntSize is one entry's size in Rreaddir: qid[13] offset[8] type[1]
// name[s].
func direntSize(name string) int { return 13 + 8 + 1 + 2 + len(name) }

// Readdir returns the entries from offset on that fit in count bytes of
// Rreaddir. The server cuts count to msize before it gets here.
func (f *file) Readdir(offset uint64, count uint32) (p9.Dirents, error) {
	if f.mode != unix.S_IFDIR {
		return nil, linux.ENOTDIR
	}
	if int64(offset) < 0 {
		return nil, linux.EINVAL
	}
	var out p9.Dirents
	err := f.withOpen(func(fd int) error {
		f.dir.mu.Lock()
		defer f.dir.mu.Unlock()
		if int64(offset) != f.dir.pos {
			if _, err := unix.Seek(fd, int64(offset), 0); err != nil {
				return err
			}
			f.dir.pos = int64(offset)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		atRoot := st.Dev == f.share.rootDev && st.Ino == f.share.rootIno
		// A getdents64 record is at most 280 bytes (a 255-byte name); ask
		// for no more than fits, and at least one record.
		buf := make([]byte, max(int(count), 512))
		used := 0
		for used < int(count) {
			n, err := unix.Getdents(fd, buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if n <= 0 {
				return nil // the end of the directory
			}
			for rec := buf[:n]; len(rec) >= 19; {
				ino := binary.NativeEndian.Uint64(rec[0:])
				off := int64(binary.NativeEndian.Uint64(rec[8:]))
				reclen := int(binary.NativeEndian.Uint16(rec[16:]))
				dtype := rec[18]
				if reclen < 19 || reclen > len(rec) {
					return linux.EIO
				}
				name := cString(rec[19:reclen])
				rec = rec[reclen:]
				if used+direntSize(name) > int(count) {
					// No room: leave the descriptor where the next call
					// seeks anyway (this entry's offset differs from pos).
					f.dir.pos = -1
					return nil
				}
				if name == ".." && atRoot {
					ino = f.share.rootIno // the root's parent is not shared
				}
				qt := dtypeQID(dtype)
				if dtype == unix.DT_UNKNOWN {
					var est unix.Stat_t
					if unix.Fstatat(fd, name, &est, unix.AT_SYMLINK_NOFOLLOW) == nil {
						qt = p9.FileMode(est.Mode).QIDType()
					}
				}
				out = append(out, p9.Dirent{
					QID:    p9.QID{Type: qt, Path: f.share.qidPath(st.Dev, ino)},
					Offset: uint64(off),
					Type:   qt,
					Name:   name,
				})
				used += direntSize(name)
				f.dir.pos = off
			}
		}
		return nil
	})
	return out, err
}

// cString is the name in a getdents64 record, up to its NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// dtypeQID is the qid type of a getdents64 d_type.
func dtypeQID(t uint8) p9.QIDType {
	switch t {
	case unix.DT_DIR:
		return p9.TypeDir
	case unix.DT_LNK:
		return p9.TypeSymlink
	}
	return p9.TypeRegular
}
