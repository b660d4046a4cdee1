package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// OCI hooks: programs config.json names, which the runtime runs at points
// of the container's life, each with the container's state (the JSON
// `kiln state` prints) on its stdin.
//
// The spec runs four kinds in the runtime's namespaces, on the host, and
// kiln runs those as runc does:
//
//	prestart, createRuntime  in kiln create, once the VM exists and before
//	                         its process may start; a failure fails create
//	poststart                in kiln start, once the process runs; a
//	                         failure is a warning in the log
//	poststop                 in kiln delete, once the VM is gone; a
//	                         failure is a warning
//
// createContainer and startContainer hooks run in the container's own
// namespaces, between its setup and its process: those are the guest's,
// in a VM with a kernel of its own, where no host program can run; kiln
// refuses them. A hook that enters the container's namespaces through
// its pid enters the VMM's, which are the engine's: the network namespace
// is the one the engine gave, but the container's interface is in the VM
// by the time prestart runs (network.go moves it at create).

// Hooks are the hooks of config.json that kiln runs.
type Hooks struct {
	Prestart      []specs.Hook `json:",omitempty"`
	CreateRuntime []specs.Hook `json:",omitempty"`
	Poststart     []specs.Hook `json:",omitempty"`
	Poststop      []specs.Hook `json:",omitempty"`
}

// translateHooks checks config.json's hooks and keeps those kiln runs.
func translateHooks(h *specs.Hooks) (*Hooks, error) {
	if h == nil {
		return nil, nil
	}
	if n := len(h.CreateContainer) + len(h.StartContainer); n > 0 {
		return nil, fmt.Errorf("%w: hooks.createContainer and hooks.startContainer: they run in the container's namespaces, which are a VM's, with a kernel of its own (prestart, createRuntime, poststart and poststop run on the host)", ErrUnsupported)
	}
	for kind, hs := range map[string][]specs.Hook{"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "poststart": h.Poststart, "poststop": h.Poststop} {
		for _, hook := range hs {
			if !filepath.IsAbs(hook.Path) {
				return nil, fmt.Errorf("%w: hooks.%s: path %q is not absolute", ErrBadBundle, kind, hook.Path)
			}
			if hook.Timeout != nil && *hook.Timeout <= 0 {
				return nil, fmt.Errorf("%w: hooks.%s: %s: timeout %d is not above zero", ErrBadBundle, kind, hook.Path, *hook.Timeout)
			}
		}
	}
	out := &Hooks{Prestart: h.Prestart, CreateRuntime: h.CreateRuntime, Poststart: h.Poststart, Poststop: h.Poststop}
	if len(out.Prestart)+len(out.CreateRuntime)+len(out.Poststart)+len(out.Poststop) == 0 {
		return nil, nil
	}
	return out, nil
}

// runHooks runs hooks one after another, each with st on its stdin; the
// first that fails ends the run with its error.
func runHooks(kind string, hooks []specs.Hook, st specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	state, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		if err := runHook(h, state); err != nil {
			return fmt.Errorf("%s hook %d (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// runHook runs one hook: its path, with its args (args[0] is the name it
// is given) and only its env, and kills it after its timeout.
func runHook(h specs.Hook, state []byte) error {
	cmd := exec.Command(h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	cmd.Env = append([]string{}, h.Env...) // its env, not kiln's
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second // a child left holding its output does not hold kiln
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if h.Timeout != nil {
		timer := time.NewTimer(time.Duration(*h.Timeout) * time.Second)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case err := <-done:
		if err != nil {
			var ee *exec.ExitError
			if msg := oneLine(out.String()); errors.As(err, &ee) && msg != "" {
				return fmt.Errorf("%v: %s", err, msg)
			}
			return err
		}
		return nil
	case <-timeout:
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("killed after its timeout of %d s", *h.Timeout)
	}
}

// oneLine is a hook's output for an error message: its last line.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
