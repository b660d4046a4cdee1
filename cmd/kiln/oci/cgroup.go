package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The container's cgroup on the host. runc puts a container's processes
// into the cgroup config.json's linux.cgroupsPath names and writes
// linux.resources into it. A kiln container's host side is one process,
// its VMM, and that process is the VM: its vCPU threads run the guest,
// its memory holds the guest's RAM, its 9P server does the guest's file
// I/O. So kiln create makes the cgroup, writes the limits into it, and
// the VMM moves itself in once its VM is built and before the VM first
// runs (vmm.go): every page of guest RAM the VM touches, every cycle of
// its vCPUs and every host file it reads are then the cgroup's, and the
// limits bound the VM as a whole, as the host sees it. The engine's
// statistics (podman stats) read the same cgroup.
//
// The warm snapshot a new shape needs is taken before the move (by a
// child of the VMM, warm.go), so one container is not charged for the
// cache every later container shares.
//
// Where the cgroup is, as runc puts it (the runtime spec, config-linux.md
// "Cgroups path"):
//
//	cgroup v2 (/sys/fs/cgroup is cgroup2)  one directory: the mount
//	                                       joined with the path
//	cgroup v1 (one mount per controller)   one directory in each
//	                                       controller's hierarchy;
//	                                       named hierarchies (systemd's)
//	                                       and a hybrid host's unified
//	                                       mount are left alone
//	an absolute path                       from the hierarchy's root
//	a relative path                        from kiln's own cgroup in
//	                                       that hierarchy
//	--systemd-cgroup, "slice:prefix:name"  the slice's path (a-b.slice is
//	                                       /a.slice/a-b.slice), then
//	                                       prefix-name.scope; kiln makes
//	                                       the directory itself and does
//	                                       not ask systemd for a unit
//	no cgroupsPath                         no cgroup: the VMM stays in
//	                                       the engine's
//
// kiln delete removes the container's directory (not its parents, which
// other containers may share), once the VMM has ended.

// cgroupRoot is where a host mounts its cgroup file systems.
const cgroupRoot = "/sys/fs/cgroup"

// Cgroup is a container's cgroup on the host: one directory on cgroup
// v2, one per controller hierarchy on v1.
type Cgroup struct {
	V2 bool `json:"v2,omitempty"`
	// Dirs are the container's directories, keyed by the controllers of
	// their hierarchy as it is mounted ("cpu,cpuacct"); on v2 the one
	// directory's key is "".
	Dirs map[string]string `json:"dirs"`
}

// cgroupMount is one cgroup file system mounted on the host.
type cgroupMount struct {
	Point       string   // where it is mounted
	Root        string   // the cgroup it shows at Point ("/" but in a cgroup namespace)
	V2          bool     // cgroup2
	Controllers []string // v1: the controllers of its hierarchy, sorted
}

// v1Controllers are the controllers a cgroup v1 mount's options name.
var v1Controllers = map[string]bool{
	"blkio": true, "cpu": true, "cpuacct": true, "cpuset": true, "devices": true,
	"freezer": true, "hugetlb": true, "memory": true, "misc": true, "net_cls": true,
	"net_prio": true, "perf_event": true, "pids": true, "rdma": true,
}

// parseCgroupMounts reads the cgroup mounts from a /proc/self/mountinfo.
func parseCgroupMounts(mountinfo string) []cgroupMount {
	var ms []cgroupMount
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 {
			continue
		}
		m := cgroupMount{Point: unescapeMount(fields[4]), Root: unescapeMount(fields[3])}
		switch tail[0] {
		case "cgroup2":
			m.V2 = true
		case "cgroup":
			for _, o := range strings.Split(tail[2], ",") {
				if v1Controllers[o] {
					m.Controllers = append(m.Controllers, o)
				}
			}
			if len(m.Controllers) == 0 {
				continue // a named hierarchy (name=systemd): no limits
			}
			sort.Strings(m.Controllers)
		default:
			continue
		}
		ms = append(ms, m)
	}
	return ms
}

// unescapeMount undoes mountinfo's octal escapes (a space is \040).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseOwnCgroups reads a /proc/PID/cgroup: the cgroup of the process in
// each hierarchy, keyed by the hierarchy's controllers, sorted and joined
// by commas ("" for v2's).
func parseOwnCgroups(procCgroup string) map[string]string {
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(procCgroup), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var cs []string
		for _, c := range strings.Split(parts[1], ",") {
			if v1Controllers[c] {
				cs = append(cs, c)
			}
		}
		sort.Strings(cs)
		if parts[0] == "0" && parts[1] == "" {
			own[""] = parts[2]
		} else if len(cs) > 0 {
			own[strings.Join(cs, ",")] = parts[2]
		}
	}
	return own
}

// SystemdCgroupPath turns --systemd-cgroup's "slice:prefix:name" into a
// cgroup path: the slice's own path, as systemd nests slices by their
// dashes, then the scope prefix-name.scope.
func SystemdCgroupPath(p string) (string, error) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: linux.cgroupsPath %q: with --systemd-cgroup it is slice:prefix:name", ErrBadBundle, p)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	if !strings.HasSuffix(slice, ".slice") || strings.Contains(slice, "/") || strings.Contains(name, "/") || strings.Contains(prefix, "/") || name == "" {
		return "", fmt.Errorf("%w: linux.cgroupsPath %q: not a systemd slice:prefix:name", ErrBadBundle, p)
	}
	dir := "/"
	if slice != "-.slice" {
		words := strings.Split(strings.TrimSuffix(slice, ".slice"), "-")
		for i := range words {
			if words[i] == "" {
				return "", fmt.Errorf("%w: linux.cgroupsPath %q: slice %q has an empty part", ErrBadBundle, p, slice)
			}
			dir = filepath.Join(dir, strings.Join(words[:i+1], "-")+".slice")
		}
	}
	unit := name
	if prefix != "" {
		unit = prefix + "-" + name
	}
	if !strings.HasSuffix(unit, ".scope") && !strings.HasSuffix(unit, ".slice") {
		unit += ".scope"
	}
	return filepath.Join(dir, unit), nil
}

// resolveCgroup finds where path (linux.cgroupsPath, already in the
// cgroupfs form) is on a host with mounts, for a process in the cgroups
// own.
func resolveCgroup(path string, mounts []cgroupMount, own map[string]string) (*Cgroup, error) {
	clean := filepath.Clean("/" + path) // never above a hierarchy's root
	if clean == "/" {
		return nil, fmt.Errorf("%w: linux.cgroupsPath %q is a hierarchy's root", ErrBadBundle, path)
	}
	dirIn := func(m cgroupMount, key string) (string, error) {
		if filepath.IsAbs(path) {
			return filepath.Join(m.Point, clean), nil
		}
		mine, ok := own[key]
		if !ok {
			return "", fmt.Errorf("linux.cgroupsPath %q is relative, and kiln's own cgroup in the %q hierarchy is not known", path, key)
		}
		rel, err := filepath.Rel(m.Root, mine)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = "." // kiln's cgroup is outside what the mount shows
		}
		return filepath.Join(m.Point, rel, clean), nil
	}
	var v1 []cgroupMount
	var v2 *cgroupMount
	for i, m := range mounts {
		if m.V2 {
			if v2 == nil || m.Point == cgroupRoot {
				v2 = &mounts[i]
			}
		} else {
			v1 = append(v1, m)
		}
	}
	cg := &Cgroup{Dirs: map[string]string{}}
	switch {
	case len(v1) > 0: // v1, or a hybrid host's v1 hierarchies
		for _, m := range v1 {
			key := strings.Join(m.Controllers, ",")
			if _, dup := cg.Dirs[key]; dup {
				continue // the same hierarchy mounted twice
			}
			dir, err := dirIn(m, key)
			if err != nil {
				return nil, err
			}
			cg.Dirs[key] = dir
		}
	case v2 != nil:
		dir, err := dirIn(*v2, "")
		if err != nil {
			return nil, err
		}
		cg.V2, cg.Dirs[""] = true, dir
	default:
		return nil, errors.New("linux.cgroupsPath: the host has no cgroup file system mounted")
	}
	return cg, nil
}

// HostCgroup finds where config.json's linux.cgroupsPath is on this
// host; systemd is runc's --systemd-cgroup.
func HostCgroup(path string, systemd bool) (*Cgroup, error) {
	if systemd {
		p, err := SystemdCgroupPath(path)
		if err != nil {
			return nil, err
		}
		path = p
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("find the host's cgroups: %w", err)
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("find the host's cgroups: %w", err)
	}
	return resolveCgroup(path, parseCgroupMounts(string(mountinfo)), parseOwnCgroups(string(own)))
}

// dir is the directory of the hierarchy that has controller (v2: the
// one directory), and whether there is one.
func (cg *Cgroup) dir(controller string) (string, bool) {
	if cg.V2 {
		d, ok := cg.Dirs[""]
		return d, ok
	}
	for key, d := range cg.Dirs {
		for _, c := range strings.Split(key, ",") {
			if c == controller {
				return d, true
			}
		}
	}
	return "", false
}

// keys are the hierarchies' keys, sorted: every walk over them is in one
// order.
func (cg *Cgroup) keys() []string {
	keys := make([]string, 0, len(cg.Dirs))
	for k := range cg.Dirs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Make creates the container's directories, with their parents. On v1 a
// new cpuset directory starts with no CPUs and no memory nodes, where no
// process can be, so each it makes gets its parent's; on v2 the
// controllers the host has are enabled on the way down, so the leaf has
// their files.
func (cg *Cgroup) Make() error {
	for _, key := range cg.keys() {
		dir := cg.Dirs[key]
		var made []string // the directories that did not exist, top first
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(d); err == nil {
				break
			}
			made = append([]string{d}, made...)
			if d == "/" {
				break
			}
		}
		if cg.V2 && len(made) > 0 {
			enableControllers(filepath.Dir(made[0]))
		}
		for _, d := range made {
			if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
				return fmt.Errorf("make the container's cgroup %s: %w", d, err)
			}
			if cg.V2 && d != dir {
				enableControllers(d)
			}
			if !cg.V2 && hasController(key, "cpuset") {
				if err := inheritCpuset(d); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func hasController(key, c string) bool {
	for _, k := range strings.Split(key, ",") {
		if k == c {
			return true
		}
	}
	return false
}

// enableControllers enables in dir's children every controller dir has
// (cgroup v2's subtree_control), one at a time: a controller the kernel
// refuses there is not the others' loss, and a limit that needs it fails
// on its missing file, by name.
func enableControllers(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return
	}
	for _, c := range strings.Fields(string(data)) {
		writeCgroupFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c))
	}
}

// inheritCpuset gives a new cgroup v1 cpuset directory its parent's CPUs
// and memory nodes.
func inheritCpuset(dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return fmt.Errorf("the container's cgroup %s: %w", dir, err)
		}
		if strings.TrimSpace(string(cur)) != "" {
			continue
		}
		parent, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
		if err != nil {
			return fmt.Errorf("the container's cgroup %s: %w", dir, err)
		}
		if err := writeCgroupFile(filepath.Join(dir, f), parent); err != nil {
			return fmt.Errorf("the container's cgroup %s: write %s: %w", dir, f, err)
		}
	}
	return nil
}

// writeCgroupFile writes data to a cgroup's file, which must exist: a
// cgroup file system makes its files itself, and a name it has not made
// is a knob this host lacks.
func writeCgroupFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: unwrapPath(err)}
	}
	return nil
}

// Join moves process pid, all its threads, into the container's cgroup.
func (cg *Cgroup) Join(pid int) error {
	for _, key := range cg.keys() {
		f := filepath.Join(cg.Dirs[key], "cgroup.procs")
		if err := writeCgroupFile(f, []byte(strconv.Itoa(pid))); err != nil {
			return fmt.Errorf("move the VMM into its cgroup: write %s: %w", f, err)
		}
	}
	return nil
}

// Remove removes the container's directories, once no process is left in
// them. A process that has just ended can hold its cgroup busy for a
// moment, so a busy directory is tried again for up to two seconds.
func (cg *Cgroup) Remove() error {
	var errs []error
	for _, key := range cg.keys() {
		dir := cg.Dirs[key]
		deadline := time.Now().Add(2 * time.Second)
		for {
			err := unix.Rmdir(dir)
			if err == nil || err == unix.ENOENT {
				break
			}
			if err == unix.EBUSY && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			errs = append(errs, fmt.Errorf("remove the container's cgroup %s: %w", dir, err))
			break
		}
	}
	return errors.Join(errs...)
}
