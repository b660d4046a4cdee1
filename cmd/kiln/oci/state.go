package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/hostnet"
	"github.com/kiln-vmm/kiln/vmm/ipc"
)

// The state directory. Every container has a directory of its own under
// the runtime's root (--root, by default /run/kiln: podman passes no
// --root, containerd passes /run/containerd/runc/NAMESPACE), named by its
// ID and made with mkdir, so two creates of one ID cannot both succeed,
// and calls for different IDs never touch the same files. It holds:
//
//	state.json  the record below, replaced whole (written aside, renamed)
//	plan.json   the VM and job the container becomes (Plan), for the VMM
//	ctl         the VMM's socket for kiln start and kill
//	v, v_PORT   the VM's vsock device and the guest's stdio and control
//	empty/      the empty directory behind unused share slots
//	console     the guest's serial console (kernel and init messages)
//	net.json    what the VMM set up in the engine's network namespace
//	            (hostnet.Plumbing), for kiln delete to undo (network.go)
//
// Commands that change a container (create, start, delete) hold an
// exclusive flock on its directory; state reads state.json without it.

// DefaultRoot is where state lives when no --root is given.
const DefaultRoot = "/run/kiln"

// Errors a command reports about a container's existence and status; the
// words are runc's, which engines match ("does not exist", "not running").
var (
	ErrNotExist   = errors.New("container does not exist")
	ErrExists     = errors.New("container already exists")
	ErrNotRunning = ipc.ErrNotRunning
)

// Record is state.json: what kiln knows of a container.
type Record struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Pid is the VMM process, the container as the host sees it, and
	// PidStart its start time; 0 while the container is being created.
	Pid      int    `json:"pid,omitempty"`
	PidStart uint64 `json:"pid_start,omitempty"`
	// Creator is the kiln create process while it works.
	Creator      int    `json:"creator,omitempty"`
	CreatorStart uint64 `json:"creator_start,omitempty"`
	// Started: kiln start told the VMM to run the process.
	Started bool `json:"started,omitempty"`
	// Paused: kiln pause stopped the VM's vCPUs, and no resume since.
	Paused bool `json:"paused,omitempty"`
}

// Container is a container's state directory, opened.
type Container struct {
	Dir string
	Record
	lock *os.File // the flock, if held
}

// idPattern is runc's rule for container IDs.
var idPattern = regexp.MustCompile(`^[\w+\-.]+$`)

// ValidID checks a container ID: it names a directory.
func ValidID(id string) error {
	if id == "" || id == "." || id == ".." || !idPattern.MatchString(id) {
		return fmt.Errorf("invalid container ID %q (letters, digits, and _ + - .)", id)
	}
	return nil
}

// Store is the runtime's root directory.
type Store struct{ Root string }

// Dir is the state directory of id.
func (s Store) Dir(id string) string { return filepath.Join(s.Root, id) }

// Create makes id's state directory, locked, and records the container as
// being created by this process.
func (s Store) Create(id, bundle, rootfs string, annotations map[string]string) (*Container, error) {
	if err := ValidID(id); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Root, 0o711); err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	dir := s.Dir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExists, id)
		}
		return nil, fmt.Errorf("state directory: %w", err)
	}
	c := &Container{Dir: dir, Record: Record{ID: id, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(), Annotations: annotations}}
	if err := c.Lock(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.Creator = os.Getpid()
	c.CreatorStart, _, _ = ProcStart(c.Creator)
	if err := c.Save(); err != nil {
		c.Remove()
		return nil, err
	}
	return c, nil
}

// Open reads id's state. With lock, it holds the directory's lock first,
// so the record read is the one the holder left.
func (s Store) Open(id string, lock bool) (*Container, error) {
	if err := ValidID(id); err != nil {
		return nil, err
	}
	c := &Container{Dir: s.Dir(id)}
	if lock {
		if err := c.Lock(); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(c.path("state.json"))
	if err != nil {
		c.Unlock()
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
		}
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(data, &c.Record); err != nil {
		c.Unlock()
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	return c, nil
}

// Lock takes the directory's exclusive lock, waiting for it.
func (c *Container) Lock() error {
	f, err := os.Open(c.Dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNotExist, filepath.Base(c.Dir))
		}
		return fmt.Errorf("state directory: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("lock %s: %w", c.Dir, err)
	}
	c.lock = f
	return nil
}

// Unlock releases the lock, if held.
func (c *Container) Unlock() {
	if c != nil && c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
}

// Path is a file in the state directory.
func (c *Container) path(name string) string { return filepath.Join(c.Dir, name) }

// Paths of the files the VMM uses.
func (c *Container) VsockPath() string   { return c.path("v") }
func (c *Container) ControlPath() string { return c.path("ctl") }
func (c *Container) EmptyDir() string    { return c.path("empty") }
func (c *Container) PlanPath() string    { return c.path("plan.json") }
func (c *Container) ConsolePath() string { return c.path("console") }
func (c *Container) NetworkPath() string { return c.path("net.json") }

// Save writes state.json whole.
func (c *Container) Save() error {
	return writeJSON(c.path("state.json"), c.Record)
}

// Status is the container's OCI status: creating while kiln create works,
// created until kiln start, running while the VMM process lives, stopped
// after; paused, from created or running, between kiln pause and resume.
func (c *Container) Status() specs.ContainerState {
	if c.Pid == 0 {
		if Alive(c.Creator, c.CreatorStart) {
			return specs.StateCreating
		}
		return specs.StateStopped // its kiln create died
	}
	if !Alive(c.Pid, c.PidStart) {
		return specs.StateStopped
	}
	if c.Paused {
		return StatePaused
	}
	if c.Started {
		return specs.StateRunning
	}
	return specs.StateCreated
}

// live reports whether a container of status st has its VMM: created,
// running or paused.
func live(st specs.ContainerState) bool {
	return st == specs.StateCreated || st == specs.StateRunning || st == StatePaused
}

// State is the OCI state, with the fields runc adds, as kiln state
// prints it.
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

// State returns the container's OCI state.
func (c *Container) State() State {
	st := State{
		State: specs.State{
			Version: specs.Version, ID: c.ID, Status: c.Status(), Bundle: c.Bundle, Annotations: c.Annotations,
		},
		Rootfs: c.Rootfs, Created: c.Created,
	}
	if live(st.Status) {
		st.Pid = c.Pid
	}
	return st
}

// Remove deletes the state directory and releases the lock.
func (c *Container) Remove() error {
	err := os.RemoveAll(c.Dir)
	c.Unlock()
	if err != nil {
		return fmt.Errorf("remove the state of %s: %w", c.ID, err)
	}
	return nil
}

// writeJSON writes v to path through a temporary file renamed into place.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SavePlan writes the plan for the VMM.
func (c *Container) SavePlan(p *Plan) error { return writeJSON(c.PlanPath(), p) }

// LoadPlan reads it back.
func LoadPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the plan: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("read the plan: %w", err)
	}
	return &p, nil
}

// SavePlumbing writes net.json: what the VMM set up, or is about to set
// up, in the engine's network namespace.
func (c *Container) SavePlumbing(p hostnet.Plumbing) error {
	return writeJSON(c.NetworkPath(), p)
}

// LoadPlumbing reads net.json back; nil if the VMM set up nothing.
func (c *Container) LoadPlumbing() (*hostnet.Plumbing, error) {
	data, err := os.ReadFile(c.NetworkPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the network's state: %w", err)
	}
	var p hostnet.Plumbing
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("read the network's state %s: %w", c.NetworkPath(), err)
	}
	return &p, nil
}
