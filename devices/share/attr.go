package share

import (
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// qid is the server's name for a file: its type, a version, and a path
// unique within the share (the inode number). The version changes when the
// file's mtime or size does, as QEMU's does: a guest with cache=loose
// compares versions to notice that the host changed a file.
func (s *Share) qid(st *unix.Stat_t) p9.QID {
	return p9.QID{
		Type:    p9.FileMode(st.Mode).QIDType(),
		Version: uint32(uint64(st.Mtim.Sec) ^ uint64(st.Size)<<8),
		Path:    s.qidPath(st.Dev, st.Ino),
	}
}

// statAttr converts stat(2)'s result into Rgetattr's attributes. 9P2000.L
// uses Linux's mode bits, so the mode passes unchanged.
func statAttr(st *unix.Stat_t) (p9.Attr, p9.AttrMask) {
	attr := p9.Attr{
		Mode:             p9.FileMode(st.Mode),
		UID:              p9.UID(st.Uid),
		GID:              p9.GID(st.Gid),
		NLink:            p9.NLink(st.Nlink),
		RDev:             p9.Dev(st.Rdev),
		Size:             uint64(st.Size),
		BlockSize:        uint64(st.Blksize),
		Blocks:           uint64(st.Blocks),
		ATimeSeconds:     uint64(st.Atim.Sec),
		ATimeNanoSeconds: uint64(st.Atim.Nsec),
		MTimeSeconds:     uint64(st.Mtim.Sec),
		MTimeNanoSeconds: uint64(st.Mtim.Nsec),
		CTimeSeconds:     uint64(st.Ctim.Sec),
		CTimeNanoSeconds: uint64(st.Ctim.Nsec),
	}
	valid := p9.AttrMask{Mode: true, NLink: true, UID: true, GID: true, RDev: true,
		ATime: true, MTime: true, CTime: true, INo: true, Size: true, Blocks: true}
	return attr, valid
}
