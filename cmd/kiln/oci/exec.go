package oci

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// kiln exec: another process in a running container, with runc's flags.
// The process is made by the guest's init (guest/contract's exec.go), in
// the container's root, with the container's environment, user and
// capabilities unless --process or the flags say otherwise. On the host an
// exec process stands for it (execproxy.go): it listens on vsock ports of
// its own for the process's stdio, asks the container's VMM to have the
// guest run it, relays the signals it receives to it, and exits with its
// status. Without --detach that process is kiln exec itself; with it,
// kiln exec starts one (`kiln _oci-exec`, ExecCommand), waits until the
// guest started the process, writes the exec process's pid to --pid-file
// and returns, leaving it to the engine (a subreaper) to wait for.

// ExecOptions are kiln exec's flags and arguments.
type ExecOptions struct {
	ID            string
	Process       string   // --process: a JSON OCI process, instead of Args and the flags below
	Args          []string // the command after the ID
	Tty           bool
	ConsoleSocket string
	Detach        bool
	PidFile       string
	Cwd           string
	Env           []string // K=V, over the container's
	User          string   // UID[:GID]
	Caps          []string // added to the bounding set
	NoNewPrivs    bool
	Stdio         [3]*os.File
}

// ExitNotRunning is kiln exec's exit code for a container that is not
// running (runc's errors are 1; a process's statuses may be any).
const ExitNotRunning = 125

// CodedError is an error with the exit code kiln gives for it.
type CodedError struct {
	Code int
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// ExecSpec is the process to run for o, in a container whose own process
// is c: o's --process file, or c's settings with o's command and flags
// over them.
func ExecSpec(c *contract.Container, o *ExecOptions) (*contract.Exec, error) {
	e := &contract.Exec{
		Args: o.Args, Env: append([]string(nil), c.Env...), Cwd: c.Cwd, User: c.User,
		NoNewPrivileges: c.NoNewPrivileges, Capabilities: c.Capabilities,
	}
	if o.Process != "" {
		b, err := os.ReadFile(o.Process)
		if err != nil {
			return nil, fmt.Errorf("exec: --process: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("exec: --process %s: %w", o.Process, err)
		}
		e.Args, e.Env, e.Cwd, e.Terminal = p.Args, p.Env, p.Cwd, p.Terminal
		e.User = contract.ContainerUser{UID: p.User.UID, GID: p.User.GID, AdditionalGIDs: p.User.AdditionalGids, Umask: p.User.Umask}
		e.NoNewPrivileges = p.NoNewPrivileges
		if pc := p.Capabilities; pc != nil {
			e.Capabilities = &contract.Capabilities{Bounding: capNumbers(pc.Bounding), Effective: capNumbers(pc.Effective),
				Permitted: capNumbers(pc.Permitted), Inheritable: capNumbers(pc.Inheritable), Ambient: capNumbers(pc.Ambient)}
		}
		if len(o.Args) > 0 {
			e.Args = o.Args
		}
	}
	if len(e.Args) == 0 {
		return nil, errors.New("exec: no command given: a command after the ID, or --process")
	}
	if o.Tty {
		e.Terminal = true
	}
	if o.Cwd != "" {
		e.Cwd = o.Cwd
	}
	if e.Cwd == "" {
		e.Cwd = "/"
	}
	if !path.IsAbs(e.Cwd) {
		return nil, fmt.Errorf("exec: the working directory %q is not an absolute path", e.Cwd)
	}
	for _, kv := range o.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("exec: --env %q: not KEY=VALUE", kv)
		}
		e.Env = setEnv(e.Env, kv)
	}
	if o.User != "" {
		u, g, hasGID := strings.Cut(o.User, ":")
		uid, err := strconv.ParseUint(u, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("exec: --user %q: a numeric UID[:GID] (names are not looked up)", o.User)
		}
		e.User = contract.ContainerUser{UID: uint32(uid), Umask: e.User.Umask}
		if hasGID {
			gid, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("exec: --user %q: a numeric UID[:GID]", o.User)
			}
			e.User.GID = uint32(gid)
		}
	}
	if len(o.Caps) > 0 && e.Capabilities != nil {
		// runc's --cap adds to every set but the ambient one.
		c := e.Capabilities
		caps := &contract.Capabilities{Bounding: append([]int(nil), c.Bounding...), Effective: append([]int(nil), c.Effective...),
			Permitted: append([]int(nil), c.Permitted...), Inheritable: append([]int(nil), c.Inheritable...), Ambient: c.Ambient}
		for _, name := range o.Caps {
			n, ok := capabilities[strings.ToUpper(name)]
			if !ok {
				return nil, fmt.Errorf("exec: --cap %q: unknown capability", name)
			}
			caps.Bounding = append(caps.Bounding, n)
			caps.Effective = append(caps.Effective, n)
			caps.Permitted = append(caps.Permitted, n)
			caps.Inheritable = append(caps.Inheritable, n)
		}
		e.Capabilities = caps
	}
	if o.NoNewPrivs {
		e.NoNewPrivileges = true
	}
	id, err := newExecID()
	if err != nil {
		return nil, err
	}
	e.ID = id
	return e, nil
}

// setEnv sets kv's key in env to kv.
func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, old := range env {
		if ok, _, _ := strings.Cut(old, "="); ok == k {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

func newExecID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("exec: an ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// capNumbers is the numbers of the capabilities named; names kiln does
// not know are left out, as runc leaves them out with a warning.
func capNumbers(names []string) []int {
	out := []int{}
	for _, name := range names {
		if n, ok := capabilities[strings.ToUpper(name)]; ok {
			out = append(out, n)
		}
	}
	return out
}
