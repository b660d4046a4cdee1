package share

import (
	"strings"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// Extended attributes: the guest gets the user.* namespace of regular
// files and directories, nothing else. The other namespaces mean something
// to the host kernel: security.capability on a host binary grants
// capabilities to whoever runs it, trusted.* and system.* (ACLs, with host
// uids) are policy. Reads of them find nothing (ENODATA), writes are not
// supported (EOPNOTSUPP).
const (
	xattrUser = "user."
	xattrMax  = 64 << 10 // XATTR_SIZE_MAX and XATTR_LIST_MAX
)

// xattrFile opens the file for an xattr call (f*xattr needs a real
// descriptor), or reports that its type carries no user xattrs.
func (f *file) xattrFile(fn func(fd int) error) error {
	if f.mode != unix.S_IFREG && f.mode != unix.S_IFDIR {
		return linux.EPERM // as Linux says for user.* on special files
	}
	return f.with(func(pfd int) error {
		fd, err := f.share.reopen(pfd, f.mode, unix.O_RDONLY|unix.O_NONBLOCK)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return fn(fd)
	})
}

// GetXattr reads one attribute. The library calls it only for Txattrwalk,
// which kiln answers itself (local.go): a call here is kiln's probe for the
// file behind a fid.
func (f *file) GetXattr(name string) ([]byte, error) {
	if f.share.probes.found(name, f) {
		return nil, linux.ENODATA
	}
	return f.getXattr(name)
}

func (f *file) getXattr(name string) ([]byte, error) {
	if !strings.HasPrefix(name, xattrUser) || f.mode != unix.S_IFREG && f.mode != unix.S_IFDIR {
		return nil, linux.ENODATA
	}
	var val []byte
	err := f.xattrFile(func(fd int) error {
		buf := make([]byte, xattrMax)
		n, err := unix.Fgetxattr(fd, name, buf)
		if err != nil {
			return err
		}
		val = buf[:n:n]
		return nil
	})
	return val, err
}

// ListXattrs lists the user.* attributes.
func (f *file) ListXattrs() ([]string, error) {
	if f.mode != unix.S_IFREG && f.mode != unix.S_IFDIR {
		return nil, nil
	}
	var names []string
	err := f.xattrFile(func(fd int) error {
		buf := make([]byte, xattrMax)
		n, err := unix.Flistxattr(fd, buf)
		if err != nil {
			return err
		}
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if strings.HasPrefix(name, xattrUser) {
				names = append(names, name)
			}
		}
		return nil
	})
	return names, err
}

// SetXattr sets a user.* attribute (flags are setxattr(2)'s).
func (f *file) SetXattr(name string, data []byte, flags p9.XattrFlags) error {
	if f.share.readOnly {
		return linux.EROFS
	}
	if !strings.HasPrefix(name, xattrUser) {
		return linux.EOPNOTSUPP
	}
	if len(data) > xattrMax {
		return linux.E2BIG
	}
	return f.xattrFile(func(fd int) error {
		return unix.Fsetxattr(fd, name, data, int(flags)&(unix.XATTR_CREATE|unix.XATTR_REPLACE))
	})
}

// RemoveXattr removes a user.* attribute.
func (f *file) RemoveXattr(name string) error {
	if f.share.readOnly {
		return linux.EROFS
	}
	if !strings.HasPrefix(name, xattrUser) {
		return linux.EOPNOTSUPP
	}
	return f.xattrFile(func(fd int) error { return unix.Fremovexattr(fd, name) })
}
