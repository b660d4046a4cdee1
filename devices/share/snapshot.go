package share

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/hugelgupf/p9/linux"
)

// A snapshot of a VM that has mounted a share holds the guest's half of a
// 9P session: its kernel knows fids by number, each naming a file, some of
// them open. The host's half is open descriptors, which no snapshot can
// hold. So kiln keeps, per fid, how the guest reached it (the attach name
// and the names walked from that root, renames followed) and how it
// opened it, and a restored VM's server makes each fid again by the same
// requests the guest once sent: Tversion, then per fid a Tattach, Twalks
// and a Tlopen. CRIU does the same for a process's open files: it records
// each one's path and flags, and opens it again on restore.
//
// What cannot be made again is refused when the snapshot is taken, with a
// line that says which file: a fid whose file the guest removed (an open,
// unlinked file: its data is on no path), and the short-lived fids of an
// extended attribute being read or written. A restore to another host
// directory works when that directory holds the same names (a copy, or the
// same layers); a fid whose file is not there fails the restore. POSIX
// locks the guest took through the share (Tlock) are the old host
// descriptors' and are not taken again.

// SessionState is what a snapshot keeps of a server's 9P session.
type SessionState struct {
	Msize uint32     `json:"msize"`
	Fids  []FidState `json:"fids"`
}

// FidState is one fid of a saved session.
type FidState struct {
	Fid   uint32   `json:"fid"`
	UID   uint32   `json:"uid"`
	Aname string   `json:"aname,omitempty"`
	Path  []string `json:"path,omitempty"`
	Open  bool     `json:"open,omitempty"`
	Flags uint32   `json:"flags,omitempty"`
}

// ErrUnsaveable says a session holds something a snapshot cannot.
var ErrUnsaveable = errors.New("the share's session cannot be saved")

// SaveSession returns the session the guest has, as JSON (a
// SessionState), or nil if it has none (it never mounted the share, or
// its driver reset). The device must be paused with no request in
// flight, so that no reply changes the fids after they are read.
func (s *Server) SaveSession() (json.RawMessage, error) {
	st, err := s.saveSession()
	if st == nil || err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

// RestoreSession starts the session SaveSession returned (nil: none).
func (s *Server) RestoreSession(data json.RawMessage) error {
	if data == nil {
		return nil
	}
	var st SessionState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("the share's 9P session: %w", err)
	}
	return s.restoreSession(&st)
}

func (s *Server) saveSession() (*SessionState, error) {
	s.mu.Lock()
	sess := s.sess
	s.mu.Unlock()
	if sess == nil || sess.msize.Load() == 0 {
		return nil, nil
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	st := &SessionState{Msize: sess.msize.Load()}
	for fid, f := range sess.fids {
		name := "/" + path.Join(f.path...)
		switch {
		case f.isXattr || f.pending > 0:
			return nil, fmt.Errorf("%w: the guest is reading or setting an extended attribute of a file (fid %d); try again", ErrUnsaveable, fid)
		case f.removed && f.opened:
			return nil, fmt.Errorf("%w: the guest holds %s open, a file it removed: its data is on no path a restore could open", ErrUnsaveable, name)
		case f.removed:
			// Only walked to, not open: the guest's kernel clunks such a
			// fid when it drops the name; a restore cannot name it.
			return nil, fmt.Errorf("%w: the guest holds a reference to %s, a file it removed", ErrUnsaveable, name)
		}
		st.Fids = append(st.Fids, FidState{Fid: fid, UID: f.uid, Aname: f.aname,
			Path: slices.Clone(f.path), Open: f.opened, Flags: f.flags})
	}
	slices.SortFunc(st.Fids, func(a, b FidState) int { return cmp.Compare(a.Fid, b.Fid) })
	return st, nil
}

// Flags a replayed open drops: the file was created, and truncated, by the
// guest's first open; doing either again would change it.
const (
	linuxOCreat = 0o100
	linuxOExcl  = 0o200
	linuxOTrunc = 0o1000
)

// restoreSession starts a session as st saved it, before the guest sends
// anything: each fid names and opens the same file again. An error names
// the file that could not be opened; the server then has no session.
func (s *Server) restoreSession(st *SessionState) error {
	if st == nil {
		return nil
	}
	replay := func(what string, b []byte) error {
		r := s.Handle(b, MaxMsize)
		if len(r) >= rlerrorLen && r[4] == rLerror {
			return fmt.Errorf("%s: %w", what, linux.Errno(le.Uint32(r[hdrLen:])))
		}
		if len(r) < hdrLen || r[4] != b[4]+1 {
			return fmt.Errorf("%s: the server answered type %d", what, r[4])
		}
		return nil
	}
	err := replay("start the 9P session", build(tVersion, st.Msize, "9P2000.L"))
	s.mu.Lock()
	if sess := s.sess; err == nil && (sess == nil || sess.msize.Load() != st.Msize) {
		err = fmt.Errorf("start the 9P session: msize %d not taken", st.Msize)
	}
	s.mu.Unlock()
	for _, f := range st.Fids {
		if err != nil {
			break
		}
		name := "/" + path.Join(f.Path...)
		err = replay("attach", build(tAttach, f.Fid, uint32(noFID), "", f.Aname, f.UID))
		for rest := f.Path; err == nil && len(rest) > 0; {
			n := min(len(rest), maxWalk)
			err = replay("walk to "+name, build(tWalk, f.Fid, f.Fid, rest[:n]))
			rest = rest[n:]
		}
		if err == nil && f.Open {
			err = replay("open "+name, build(tLopen, f.Fid, f.Flags&^(linuxOCreat|linuxOExcl|linuxOTrunc)))
		}
	}
	if err != nil {
		s.Reset()
		return fmt.Errorf("reopen the guest's files in the share: %w", err)
	}
	return nil
}

// build encodes a T-message with tag 0 of uint32, string and []string
// (a walk's names) fields.
func build(typ byte, fields ...any) []byte {
	b := newMsg(typ, 0, 0)
	for _, f := range fields {
		switch v := f.(type) {
		case uint32:
			b = le.AppendUint32(b, v)
		case string:
			b = append(le.AppendUint16(b, uint16(len(v))), v...)
		case []string:
			b = le.AppendUint16(b, uint16(len(v)))
			for _, n := range v {
				b = append(le.AppendUint16(b, uint16(len(n))), n...)
			}
		}
	}
	le.PutUint32(b, uint32(len(b)))
	return b
}

// renamedLocked follows a rename of olddir/oldname to newdir/newname in
// the fids' paths: the fids below the old name move; those below the new
// name, a file the rename replaced, name a removed file.
func (s *session) renamedLocked(olddir *fidState, oldname string, newdir *fidState, newname string) {
	if olddir == nil || newdir == nil || olddir.aname != newdir.aname {
		return
	}
	from := append(slices.Clone(olddir.path), oldname)
	to := append(slices.Clone(newdir.path), newname)
	if slices.Equal(from, to) {
		return
	}
	for _, st := range s.fids {
		if st.aname == newdir.aname && hasPrefix(st.path, to) && !hasPrefix(st.path, from) {
			st.removed = true
		}
	}
	for _, st := range s.fids {
		if st.aname == olddir.aname && hasPrefix(st.path, from) {
			st.path = append(slices.Clone(to), st.path[len(from):]...)
		}
	}
}

// hasPrefix reports whether p is at or below dir.
func hasPrefix(p, dir []string) bool {
	return len(p) >= len(dir) && slices.Equal(p[:len(dir)], dir)
}
