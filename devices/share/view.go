package share

import (
	"fmt"
	"slices"

	"github.com/hugelgupf/p9/fsimpl/templatefs"
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// A view is a share whose root is not the host directory but a small
// read-only directory of kiln's own, holding only what the VM was given:
//
//   - View{Name: "etc"} for the directory /etc: the root holds one entry,
//     etc, which is /etc. An OCI bind mount of a directory is shared so;
//     the guest binds /etc's entry, and its /proc/self/mountinfo then
//     gives the mount's root as /etc, as the host's does for runc's bind.
//   - View{Files: {"hosts", "resolv.conf"}} for a directory: the root
//     holds those files of it and nothing else. A bind mount of a file
//     shares its directory so, and the guest sees no more of the
//     directory than the files bound from it.
//
// Nothing below the root is changed by a view: each entry is a file of
// the share, resolved and confined as every other.
type View struct {
	Name  string   // the root holds only the shared directory, by this name
	Files []string // the root holds only these files of the shared directory
}

// viewQIDPath is the view root's qid path. The inode number 0 is no
// file's, so it names no file of the share (see qidPath).
const viewQIDPath = 0xff << 56

// NewView shares the directory at path through a view of it.
func NewView(path string, v View, readOnly bool) (*Share, error) {
	if v.Name != "" && len(v.Files) > 0 {
		return nil, fmt.Errorf("share %s: %w: a view holds either the directory or files of it", path, ErrBadShare)
	}
	if v.Name == "" && len(v.Files) == 0 {
		return nil, fmt.Errorf("share %s: %w: a view holds the directory or files of it", path, ErrBadShare)
	}
	names := v.Files
	if v.Name != "" {
		names = []string{v.Name}
	}
	for _, n := range names {
		if checkName(n) != nil {
			return nil, fmt.Errorf("share %s: %w: %q is not a name in a directory", path, ErrBadShare, n)
		}
	}
	s, err := New(path, readOnly)
	if err != nil {
		return nil, err
	}
	s.view = &v
	return s, nil
}

// viewRoot is the root of a view (a p9.File): it lists its entries and
// walks into them, and refuses every change with EROFS.
type viewRoot struct {
	templatefs.ReadOnlyDir // EROFS for changes, EISDIR for I/O, no xattrs, no locks
	p9.DefaultWalkGetAttr
	share *Share
}

var _ p9.File = (*viewRoot)(nil)

// names lists the root's entries.
func (r *viewRoot) names() []string {
	if v := r.share.view; v.Name != "" {
		return []string{v.Name}
	}
	return r.share.view.Files
}

// Walk walks into an entry and on below it; no names clones the root.
// The entries are the shared directory itself (View.Name) or files in it
// (View.Files), so every step past the root is the shared directory's
// own walk (file.Walk), resolved and confined as any other.
func (r *viewRoot) Walk(names []string) ([]p9.QID, p9.File, error) {
	if len(names) == 0 {
		return nil, &viewRoot{share: r.share}, nil
	}
	if err := checkName(names[0]); err != nil {
		return nil, nil, err
	}
	if !slices.Contains(r.names(), names[0]) {
		return nil, nil, linux.ENOENT
	}
	dir, err := r.share.rootFile()
	if err != nil {
		return nil, nil, err
	}
	defer dir.Close()
	if r.share.view.Name == "" {
		return dir.Walk(names) // a file of the directory
	}
	qid, _, _, err := dir.GetAttr(p9.AttrMask{})
	if err != nil {
		return nil, nil, err
	}
	qids, f, err := dir.Walk(names[1:]) // the directory, and on below it
	if err != nil {
		return nil, nil, err
	}
	return append([]p9.QID{qid}, qids...), f, nil
}

// GetAttr gives the root the shared directory's owner and times, and the
// mode of a directory no one may change.
func (r *viewRoot) GetAttr(p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	var st unix.Stat_t
	if err := unix.Fstat(r.share.root, &st); err != nil {
		return p9.QID{}, p9.AttrMask{}, p9.Attr{}, errno(err)
	}
	attr, valid := statAttr(&st)
	attr.Mode = p9.FileMode(unix.S_IFDIR | 0o555)
	attr.NLink = 2
	return r.qid(), valid, attr, nil
}

func (r *viewRoot) qid() p9.QID { return p9.QID{Type: p9.TypeDir, Path: viewQIDPath} }

// Open opens the root for reading its entries.
func (r *viewRoot) Open(mode p9.OpenFlags) (p9.QID, uint32, error) {
	if mode.Mode() != p9.ReadOnly {
		return p9.QID{}, 0, linux.EISDIR
	}
	return r.qid(), 0, nil
}

// Readdir lists the entries that exist, from offset on (an entry's offset
// is its index plus one).
func (r *viewRoot) Readdir(offset uint64, count uint32) (p9.Dirents, error) {
	var out p9.Dirents
	used := 0
	for i, name := range r.names() {
		if uint64(i) < offset {
			continue
		}
		if used+direntSize(name) > int(count) {
			break
		}
		qids, f, err := r.Walk([]string{name})
		if err == linux.ENOENT {
			continue // a file bound from the directory was removed since
		}
		if err != nil {
			return nil, err
		}
		f.Close()
		qid := qids[0]
		out = append(out, p9.Dirent{QID: qid, Offset: uint64(i + 1), Type: qid.Type, Name: name})
		used += direntSize(name)
	}
	return out, nil
}

// GetXattr only answers kiln's probe (local.go): the root has no
// attributes, and the guest's Txattrwalks never reach the library.
func (r *viewRoot) GetXattr(name string) ([]byte, error) {
	r.share.probes.foundView(name)
	return nil, linux.ENODATA
}

// StatFS reports the host file system holding the shared directory.
func (r *viewRoot) StatFS() (p9.FSStat, error) { return statFS(r.share.root) }

// FSync has nothing to write.
func (r *viewRoot) FSync() error { return nil }

// SetAttr refuses: the root is kiln's, not the host's.
func (r *viewRoot) SetAttr(p9.SetAttrMask, p9.SetAttr) error { return linux.EROFS }

// Rename refuses: the root has no parent to be renamed in.
func (r *viewRoot) Rename(p9.File, string) error { return linux.EROFS }

// Close has nothing to close: the root holds no descriptor.
func (r *viewRoot) Close() error { return nil }
