package oci

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strconv"
	"syscall"
)

// List is the state of every container under the root, by ID. A root that
// does not exist holds none. Directories that are no container's (left
// half made, or not kiln's) are passed over, as runc passes them.
func (r *Runtime) List() ([]State, error) {
	entries, err := os.ReadDir(r.Store.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.Store.Root, err)
	}
	var out []State
	for _, e := range entries {
		if !e.IsDir() || ValidID(e.Name()) != nil {
			continue
		}
		c, err := r.Store.Open(e.Name(), false)
		if err != nil {
			continue // deleted meanwhile, or no state.json
		}
		st := c.State()
		st.Owner = owner(c.Dir)
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// owner names the owner of the state directory, as runc's list does: the
// user's name, or #UID.
func owner(dir string) string {
	fi, err := os.Stat(dir)
	if err != nil {
		return ""
	}
	uid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))
	if u, err := user.LookupId(uid); err == nil {
		return u.Username
	}
	return "#" + uid
}
