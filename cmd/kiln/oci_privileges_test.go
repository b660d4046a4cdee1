package main

// A container's privileges and mount tree as config.json gives them, read
// from inside real guests: the five capability sets from
// /proc/self/status, the propagation of its mounts from
// /proc/self/mountinfo.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

// editBundle rewrites the bundle's config.json with edit.
func editBundle(t *testing.T, bundle string, edit func(*specs.Spec)) {
	t.Helper()
	file := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var spec specs.Spec
	require.NoError(t, json.Unmarshal(data, &spec))
	edit(&spec)
	data, err = json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, data, 0o644))
}

// runContainer creates and starts the container, waits for it and
// returns its stdout; it fails unless the process exited 0.
func (o *ociRuntime) runContainer(id, bundle string) string {
	o.t.Helper()
	pid := o.createOK(id, bundle)
	r := o.run("start", id)
	require.Equal(o.t, 0, r.code, r.stderr)
	code := waitExit(o.t, pid)
	out, errs := o.output(id)
	require.Equal(o.t, 0, code, "stdout %q stderr %q", out, errs)
	r = o.run("delete", id)
	require.Equal(o.t, 0, r.code, r.stderr)
	return out
}

// capStatus picks the five Cap lines of a /proc/PID/status.
func capStatus(status string) map[string]string {
	caps := map[string]string{}
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.HasPrefix(k, "Cap") {
			caps[k] = strings.TrimSpace(v)
		}
	}
	return caps
}

// mask is a capability set as /proc/PID/status shows it.
func mask(caps ...int) string {
	var m uint64
	for _, c := range caps {
		m |= 1 << c
	}
	return fmt.Sprintf("%016x", m)
}

// TestOCICapabilities runs `cat /proc/self/status` as root and as uid
// 1000 with five different capability sets, and checks what the process
// holds against the kernel's rule for an exec (guest/init/caps.go), and,
// where runc is installed, against what runc gives for the same
// config.json.
func TestOCICapabilities(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	const (
		chown, setgid, setuid, kill, netBind, netRaw = 0, 6, 7, 5, 10, 13
	)
	sets := &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"},
		Effective:   []string{"CAP_KILL", "CAP_NET_RAW"},
		Permitted:   []string{"CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"},
		Inheritable: []string{"CAP_NET_RAW", "CAP_NET_BIND_SERVICE"},
		// CAP_KILL is not inheritable: the kernel raises no ambient
		// capability that is not both permitted and inheritable.
		Ambient: []string{"CAP_NET_RAW", "CAP_KILL"},
	}
	bnd := mask(chown, setgid, setuid, kill, netBind, netRaw)
	inh := mask(netBind, netRaw)
	amb := mask(netRaw)
	for _, tc := range []struct {
		name string
		uid  uint32
		want map[string]string
	}{
		// root: permitted = effective = bounding | inheritable | ambient.
		{"root", 0, map[string]string{"CapInh": inh, "CapPrm": bnd, "CapEff": bnd, "CapBnd": bnd, "CapAmb": amb}},
		// another user: permitted = effective = ambient.
		{"user", 1000, map[string]string{"CapInh": inh, "CapPrm": amb, "CapEff": amb, "CapBnd": bnd, "CapAmb": amb}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := writeBundle(t, rootfs, "cat", "/proc/self/status")
			editBundle(t, b, func(s *specs.Spec) {
				s.Process.User = specs.User{UID: tc.uid, GID: tc.uid}
				s.Process.Capabilities = sets
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "uts"})
			})
			o := newOCIRuntime(t, "")
			got := capStatus(o.runContainer("c-"+tc.name, b))
			require.Equal(t, tc.want, got, "kiln: /proc/self/status")
			if runc, err := exec.LookPath("runc"); err == nil {
				require.Equal(t, tc.want, capStatus(runcOutput(t, runc, b)), "runc, for the same config.json")
			} else {
				t.Log("runc is not installed: kiln's sets are checked against the kernel's rule only")
			}
		})
	}
}

// runcOutput runs the bundle with runc and returns its stdout.
func runcOutput(t *testing.T, runc, bundle string) string {
	t.Helper()
	id := fmt.Sprintf("kiln-test-%d", time.Now().UnixNano())
	cmd := exec.Command(runc, "--root", t.TempDir(), "run", "--bundle", bundle, id)
	var out, errs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errs
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "runc run: %s", errs.String())
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("runc run did not end within 2 minutes: %s", errs.String())
	}
	return out.String()
}

// TestOCIMountPropagation gives a container's mounts each propagation
// type and its root linux.rootfsPropagation, and reads their optional
// fields in /proc/self/mountinfo inside the guest: shared:N, master:N
// (a slave bind of a host directory, whose share is shared in the guest
// as a host's mounts are under systemd), unbindable, or none (private).
func TestOCIMountPropagation(t *testing.T) {
	t.Parallel()
	rootfs := ociGuest(t)
	vol1, vol2 := t.TempDir(), t.TempDir()
	b := writeBundle(t, rootfs, "cat", "/proc/self/mountinfo")
	editBundle(t, b, func(s *specs.Spec) {
		s.Linux.RootfsPropagation = "shared"
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/tmp/shared", Type: "tmpfs", Source: "tmpfs", Options: []string{"shared"}},
			specs.Mount{Destination: "/tmp/private", Type: "tmpfs", Source: "tmpfs", Options: []string{"shared", "private"}},
			specs.Mount{Destination: "/tmp/unbindable", Type: "tmpfs", Source: "tmpfs", Options: []string{"unbindable"}},
			specs.Mount{Destination: "/tmp/slave", Type: "bind", Source: vol1, Options: []string{"rbind", "rslave"}},
			specs.Mount{Destination: "/tmp/rshared", Type: "bind", Source: vol2, Options: []string{"bind", "rshared"}},
			specs.Mount{Destination: "/tmp/rprivate", Type: "bind", Source: vol2, Options: []string{"rbind", "rprivate"}},
		)
	})
	o := newOCIRuntime(t, "")
	out := o.runContainer("c1", b)

	// Field 5 is the mount point; the optional fields run from field 7
	// to the "-" (proc(5)).
	fields, roots := map[string][]string{}, map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		roots[f[4]] = f[3]
		var opt []string
		for _, x := range f[6:] {
			if x == "-" {
				break
			}
			opt = append(opt, strings.SplitN(x, ":", 2)[0])
		}
		fields[f[4]] = opt
	}
	t.Logf("mountinfo:\n%s", out)
	for mnt, want := range map[string][]string{
		"/":               {"shared"},
		"/tmp/shared":     {"shared"},
		"/tmp/private":    nil,
		"/tmp/unbindable": {"unbindable"},
		"/tmp/slave":      {"master"},
		"/tmp/rshared":    {"shared"},
		"/tmp/rprivate":   nil,
	} {
		got, ok := fields[mnt]
		require.True(t, ok, "%s is in the container's mountinfo", mnt)
		require.Equal(t, want, got, "%s's propagation fields", mnt)
	}
	// Field 4 is the mount's root in its file system. A bind of a host
	// directory gives its name there, as runc's bind does (the check
	// runtime-tools' mounts program makes).
	require.Equal(t, "/"+filepath.Base(vol1), roots["/tmp/slave"])
	require.Equal(t, "/"+filepath.Base(vol2), roots["/tmp/rshared"])
}
