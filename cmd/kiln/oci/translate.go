package oci

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-vmm/kiln/guest/contract"
	"github.com/kiln-vmm/kiln/vmm/config"
)

// Plan is what a container becomes in a kiln VM: the host directories
// behind the VM's share slots, and the job for the guest's init.
type Plan struct {
	// Shares are the VM's 9P devices, Slots of them in slot order.
	Shares []config.Share
	// Container is the guest's job.
	Container contract.Container
	// Netns is the network namespace config.json names (the engine's,
	// with its interface); "" when it asks for a new one (NewNetns).
	// kiln create reads the interface there into Network (network.go).
	Netns    string `json:",omitempty"`
	NewNetns bool   `json:",omitempty"`
	// Network is the container's network device, if it has one.
	Network *Network `json:",omitempty"`
	// Size is the VM's vCPUs and memory, from linux.resources
	// (resources.go); zero in a plan written before it: DefaultSize.
	Size Size
	// Notes say, one line each, how linux.resources became the VM's
	// size and which of its limits a VM cannot honour; kiln create
	// writes them to the runtime's log.
	Notes []string `json:",omitempty"`
	// Cgroup is the container's cgroup on the host, which kiln create
	// made for linux.cgroupsPath with the limits written in it; the VMM
	// moves itself in before its VM first runs. nil: no cgroupsPath.
	Cgroup *Cgroup `json:",omitempty"`
	// Hooks are config.json's hooks that run on the host (hooks.go).
	Hooks *Hooks `json:",omitempty"`
	// Ignored lists, once each, what config.json asks that a VM does not
	// do (docs/oci.md says why for each).
	Ignored []string
}

// ErrUnsupported marks what config.json asks that kiln refuses to run
// rather than run differently from what was asked.
var ErrUnsupported = errors.New("not supported by kiln")

// Translate turns a bundle into a Plan. empty is the empty directory that
// backs unused share slots.
func Translate(b *Bundle, empty string) (*Plan, error) {
	return TranslateOn(b, empty, ThisHost())
}

// TranslateOn is Translate for a host h, which caps the VM's size.
func TranslateOn(b *Bundle, empty string, h Host) (*Plan, error) {
	t := &translator{plan: &Plan{Size: DefaultSize}, ignored: map[string]bool{}, host: h}
	if err := t.translate(b); err != nil {
		return nil, err
	}
	p := t.plan
	for i, d := range t.dirs {
		p.Shares = append(p.Shares, config.Share{HostDir: d.dir, GuestDir: path.Join("/kiln/slots", SlotTag(i)), Tag: SlotTag(i), ReadOnly: d.ro, View: d.view})
	}
	for i := len(p.Shares); i < Slots; i++ {
		p.Shares = append(p.Shares, emptySlot(empty, i))
	}
	for k := range t.ignored {
		p.Ignored = append(p.Ignored, k)
	}
	sort.Strings(p.Ignored)
	return p, nil
}

type translator struct {
	plan    *Plan
	dirs    []sharedDir // slot i holds dirs[i]; slot 0 is the root
	ignored map[string]bool
	host    Host
}

// sharedDir is a host directory given a slot.
type sharedDir struct {
	dir  string
	ro   bool              // every bind from it is read-only
	view *config.ShareView // what the guest sees of it; nil: all of it
}

func (t *translator) ignore(what string) { t.ignored[what] = true }

func (t *translator) translate(b *Bundle) error {
	s := b.Spec
	c := &t.plan.Container
	// The root: slot 0, shared writable, so that init can make the mount
	// points config.json needs; a read-only root is remounted read-only
	// in the guest once they are made, as runc does.
	t.dirs = append(t.dirs, sharedDir{dir: b.Rootfs}) // all of it: no view
	c.Root = contract.ContainerRoot{Tag: SlotTag(0), ReadOnly: s.Root.Readonly}
	c.ControlPort = ControlPort
	c.Hostname = s.Hostname
	hooks, err := translateHooks(s.Hooks)
	if err != nil {
		return err
	}
	t.plan.Hooks = hooks
	if s.Windows != nil || s.Solaris != nil || s.ZOS != nil {
		return fmt.Errorf("%w: a bundle for another operating system", ErrUnsupported)
	}
	if err := t.process(s.Process); err != nil {
		return err
	}
	devTmpfs := false
	for _, m := range s.Mounts {
		cm, err := t.mount(m)
		if err != nil {
			return err
		}
		if cm != nil {
			c.Mounts = append(c.Mounts, *cm)
			if cm.Destination == "/dev" && cm.Type == "tmpfs" {
				devTmpfs = true
			}
		}
	}
	if len(t.dirs) > Slots {
		return fmt.Errorf("%w: the container needs %d shared directories (its root and one per directory of bind mounts); kiln's VM has %d", ErrUnsupported, len(t.dirs), Slots)
	}
	if s.Linux != nil {
		if err := t.linux(s.Linux, devTmpfs); err != nil {
			return err
		}
	} else {
		if devTmpfs {
			c.Devices = defaultDevices()
		}
		return errHostNetwork
	}
	return nil
}

// errHostNetwork refuses a container without a network namespace of its
// own (podman --network host): the VM's guest has a network stack of its
// own, which cannot be the host's.
var errHostNetwork = fmt.Errorf("%w: the host's network (config.json gives the container no network namespace, as podman --network host does): a VM cannot share the host's network stack", ErrUnsupported)

// process translates the process: command, environment, user, limits.
func (t *translator) process(p *specs.Process) error {
	c := &t.plan.Container
	c.Args = p.Args
	c.Env = p.Env
	c.Terminal = p.Terminal
	c.Cwd = p.Cwd
	if c.Cwd == "" {
		c.Cwd = "/"
	}
	if !path.IsAbs(c.Cwd) {
		return fmt.Errorf("%w: process.cwd %q is not an absolute path", ErrBadBundle, p.Cwd)
	}
	c.User = contract.ContainerUser{UID: p.User.UID, GID: p.User.GID, AdditionalGIDs: p.User.AdditionalGids, Umask: p.User.Umask}
	if p.User.Username != "" {
		t.ignore("process.user.username (Windows only)")
	}
	for _, r := range p.Rlimits {
		n, ok := rlimits[r.Type]
		if !ok {
			return fmt.Errorf("%w: process.rlimits: unknown resource %q", ErrBadBundle, r.Type)
		}
		c.Rlimits = append(c.Rlimits, contract.Rlimit{Resource: n, Soft: r.Soft, Hard: r.Hard})
	}
	c.NoNewPrivileges = p.NoNewPrivileges
	if p.Capabilities != nil {
		pc := p.Capabilities
		c.Capabilities = &contract.Capabilities{
			Bounding:    t.caps(pc.Bounding),
			Effective:   t.caps(pc.Effective),
			Permitted:   t.caps(pc.Permitted),
			Inheritable: t.caps(pc.Inheritable),
			Ambient:     t.caps(pc.Ambient),
		}
	}
	c.OOMScoreAdj = p.OOMScoreAdj
	if p.ApparmorProfile != "" || p.SelinuxLabel != "" {
		t.ignore("AppArmor and SELinux labels")
	}
	if p.Scheduler != nil || p.IOPriority != nil || p.ExecCPUAffinity != nil {
		t.ignore("process scheduling: scheduler, ioPriority, execCPUAffinity")
	}
	return nil
}

// caps turns capability names into numbers; a name kiln does not know
// is left out, as runc leaves it out with a warning.
func (t *translator) caps(names []string) []int {
	ns := []int{}
	for _, name := range names {
		if n, ok := capabilities[strings.ToUpper(name)]; ok {
			ns = append(ns, n)
		} else {
			t.ignore("unknown capability " + name)
		}
	}
	return ns
}

// linux translates the Linux section: namespaces, devices, sysctls, paths.
func (t *translator) linux(l *specs.Linux, devTmpfs bool) error {
	c := &t.plan.Container
	network := false
	for _, ns := range l.Namespaces {
		switch ns.Type {
		case specs.UserNamespace:
			return fmt.Errorf("%w: a user namespace: the VM's guest has one uid space, which is the container's", ErrUnsupported)
		case specs.NetworkNamespace:
			// The engine's namespace, with the interface it made there,
			// which the VM takes over (network.go); without a path, a new
			// one, which runc would make empty: the VM gets no network
			// device, and its VMM a namespace of its own.
			network = true
			t.plan.Netns, t.plan.NewNetns = ns.Path, ns.Path == ""
		case specs.PIDNamespace, specs.MountNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.CgroupNamespace, specs.TimeNamespace:
			if ns.Path != "" {
				return fmt.Errorf("%w: joining the %s namespace %s of another container: a VM has its own", ErrUnsupported, ns.Type, ns.Path)
			}
		}
	}
	if !network {
		return errHostNetwork
	}
	if len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0 {
		return fmt.Errorf("%w: uid and gid mappings", ErrUnsupported)
	}
	devices := l.Devices
	if devTmpfs {
		c.Devices = defaultDevices()
	} else if len(devices) > 0 {
		t.ignore("linux.devices: made only in a tmpfs /dev")
		devices = nil
	}
	for _, d := range devices {
		dev := contract.ContainerDevice{Path: d.Path, Type: d.Type, Major: d.Major, Minor: d.Minor, Mode: 0o666}
		if d.FileMode != nil {
			dev.Mode = uint32(*d.FileMode) & 0o7777
		}
		if d.UID != nil {
			dev.UID = *d.UID
		}
		if d.GID != nil {
			dev.GID = *d.GID
		}
		if !strings.HasPrefix(path.Clean(d.Path), "/dev/") {
			return fmt.Errorf("%w: device %s is not under /dev", ErrBadBundle, d.Path)
		}
		c.Devices = replaceDevice(c.Devices, dev)
	}
	for k, v := range l.Sysctl {
		if !validSysctl(k) {
			return fmt.Errorf("%w: sysctl %q", ErrBadBundle, k)
		}
		if c.Sysctl == nil {
			c.Sysctl = map[string]string{}
		}
		c.Sysctl[k] = v
	}
	c.MaskedPaths = l.MaskedPaths
	c.ReadonlyPaths = l.ReadonlyPaths
	if l.Seccomp != nil {
		t.ignore("seccomp: the guest kernel has no seccomp; the VM is the boundary")
	}
	// With a cgroupsPath, kiln create makes that cgroup on the host and
	// writes the limits there (cgroup.go).
	size, notes, err := SizeOf(l.Resources, t.host, l.CgroupsPath != "")
	if err != nil {
		return err
	}
	t.plan.Size, t.plan.Notes = size, notes
	if l.RootfsPropagation != "" {
		if !contract.Propagations[l.RootfsPropagation] {
			return fmt.Errorf("%w: linux.rootfsPropagation %q (shared, slave, private, unbindable or their r- forms)", ErrBadBundle, l.RootfsPropagation)
		}
		c.RootPropagation = l.RootfsPropagation
	}
	if l.MountLabel != "" || l.IntelRdt != nil || l.Personality != nil {
		t.ignore("mountLabel, intelRdt, personality")
	}
	return nil
}

// mount translates one mount; nil means it is left out.
func (t *translator) mount(m specs.Mount) (*contract.ContainerMount, error) {
	if !path.IsAbs(m.Destination) {
		return nil, fmt.Errorf("%w: mount destination %q is not an absolute path", ErrBadBundle, m.Destination)
	}
	cm := &contract.ContainerMount{Destination: path.Clean(m.Destination), Type: m.Type, Source: m.Source}
	bind := m.Type == "bind"
	var data []string
	for _, o := range m.Options {
		switch o {
		case "bind":
			bind = true
		case "rbind":
			bind, cm.Recursive = true, true
		case "ro":
			cm.ReadOnly = true
		case "rw":
			cm.ReadOnly = false
		case "nosuid":
			cm.NoSuid = true
		case "suid":
			cm.NoSuid = false
		case "nodev":
			cm.NoDev = true
		case "dev":
			cm.NoDev = false
		case "noexec":
			cm.NoExec = true
		case "exec":
			cm.NoExec = false
		case "tmpcopyup":
			cm.CopyUp = true
		case "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
			cm.Propagation = append(cm.Propagation, o)
		case "relatime", "norelatime", "strictatime", "nostrictatime", "noatime", "atime", "nodiratime", "diratime",
			"sync", "async", "dirsync", "mand", "nomand", "remount", "silent", "loud", "notmpcopyup",
			"z", "Z", "U", "copy", "nocopy", "O":
			// Times and the rest: the defaults serve.
		case "idmap", "ridmap":
			return nil, fmt.Errorf("%w: idmapped mount on %s", ErrUnsupported, m.Destination)
		default:
			data = append(data, o)
		}
	}
	if bind {
		return t.bind(m, cm)
	}
	switch m.Type {
	case "tmpfs", "proc", "sysfs", "devpts", "mqueue":
		cm.Data = data
		if cm.Source == "" {
			cm.Source = m.Type
		}
		return cm, nil
	case "cgroup", "cgroup2":
		t.ignore("the cgroup file system: the guest kernel has no cgroups")
		return nil, nil
	}
	return nil, fmt.Errorf("%w: a %q mount on %s (kiln mounts tmpfs, proc, sysfs, devpts, mqueue and binds)", ErrUnsupported, m.Type, m.Destination)
}

// bind turns a bind mount of a host path into a share and a path in it.
func (t *translator) bind(m specs.Mount, cm *contract.ContainerMount) (*contract.ContainerMount, error) {
	cm.Type, cm.Source = "bind", ""
	if cm.Destination == "/dev/shm" {
		// Shared memory inside the guest: a host directory shared over
		// 9P would only be slower. podman binds its own tmpfs here.
		cm.Type, cm.Source, cm.Data = "tmpfs", "shm", []string{"mode=1777", "size=65536k"}
		return cm, nil
	}
	if !filepath.IsAbs(m.Source) {
		return nil, fmt.Errorf("%w: bind mount source %q is not an absolute path", ErrBadBundle, m.Source)
	}
	st, err := os.Stat(m.Source)
	if err != nil {
		return nil, fmt.Errorf("%w: bind mount on %s: %v", ErrBadBundle, m.Destination, err)
	}
	switch {
	case st.IsDir() && filepath.Clean(m.Source) == "/":
		cm.Tag = t.share(sharedDir{dir: "/", ro: cm.ReadOnly})
	case st.IsDir():
		// The directory, as the one entry of a root of kiln's: the guest
		// binds that entry, so its mountinfo gives the mount's root as
		// /NAME, as the host's does for runc's bind of the same.
		dir := filepath.Clean(m.Source)
		cm.Path = filepath.Base(dir)
		cm.Tag = t.share(sharedDir{dir: dir, ro: cm.ReadOnly, view: &config.ShareView{Name: cm.Path}})
	case st.Mode().IsRegular():
		// A file: its directory is shared, with only the files bound
		// from it in view, and the guest binds the file.
		dir, name := filepath.Split(filepath.Clean(m.Source))
		cm.Path = name
		cm.Tag = t.share(sharedDir{dir: filepath.Clean(dir), ro: cm.ReadOnly, view: &config.ShareView{Files: []string{name}}})
	default:
		return nil, fmt.Errorf("%w: bind mount of %s on %s: only directories and regular files reach a VM (a device, socket or FIFO of the host does not)", ErrUnsupported, m.Source, m.Destination)
	}
	return cm, nil
}

// share gives d a slot, or finds the one that shares its directory the
// same way: files bound from one directory share one slot, each adding
// itself to its view.
func (t *translator) share(d sharedDir) string {
	for i := range t.dirs {
		o := &t.dirs[i]
		if o.dir != d.dir || (o.view == nil) != (d.view == nil) {
			continue
		}
		switch {
		case d.view == nil, d.view.Name != "" && o.view.Name == d.view.Name:
		case len(d.view.Files) > 0 && len(o.view.Files) > 0:
			if !slices.Contains(o.view.Files, d.view.Files[0]) {
				o.view.Files = append(o.view.Files, d.view.Files[0])
			}
		default:
			continue
		}
		o.ro = o.ro && d.ro
		return SlotTag(i)
	}
	t.dirs = append(t.dirs, d)
	return SlotTag(len(t.dirs) - 1)
}

// defaultDevices are the nodes runc makes in a container's /dev.
func defaultDevices() []contract.ContainerDevice {
	dev := func(name string, major, minor int64) contract.ContainerDevice {
		return contract.ContainerDevice{Path: "/dev/" + name, Type: "c", Major: major, Minor: minor, Mode: 0o666}
	}
	return []contract.ContainerDevice{
		dev("null", 1, 3), dev("zero", 1, 5), dev("full", 1, 7),
		dev("random", 1, 8), dev("urandom", 1, 9), dev("tty", 5, 0),
	}
}

func replaceDevice(devs []contract.ContainerDevice, d contract.ContainerDevice) []contract.ContainerDevice {
	for i := range devs {
		if path.Clean(devs[i].Path) == path.Clean(d.Path) {
			devs[i] = d
			return devs
		}
	}
	return append(devs, d)
}

// validSysctl accepts a dotted kernel parameter name: no path tricks.
func validSysctl(k string) bool {
	if k == "" || strings.Contains(k, "..") || strings.HasPrefix(k, ".") {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// rlimits are Linux's resource numbers (include/uapi/asm-generic/resource.h).
var rlimits = map[string]int{
	"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
	"RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
	"RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
	"RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

// capabilities are Linux's capability numbers (include/uapi/linux/capability.h).
var capabilities = map[string]int{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
	"CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
	"CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
	"CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17,
	"CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21,
	"CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25,
	"CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29,
	"CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
	"CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
	"CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}
