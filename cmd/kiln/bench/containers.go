package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A container starts the same program as the VM's init runs, from the same
// files: the initramfs unpacked into an OCI bundle (rootfs/ plus
// config.json). There is no kernel to boot, only namespaces and cgroups to
// set up, so this is the start-up time a microVM is measured against.

// guestPath is the PATH the workload sees, in the guest and in containers.
const guestPath = "/bbin:/bin:/usr/bin:/sbin:/usr/sbin"

// containerMethods returns crun, runc, unshare+chroot and fork/exec, the
// last as the floor: the workload's own start without any isolation.
func (b *bench) containerMethods() []runner {
	crun := runner{Method: Method{Name: "crun", Kind: "container", Detail: "crun run on an OCI bundle of the initramfs"}}
	runc := runner{Method: Method{Name: "runc", Kind: "container", Detail: "runc run on the same bundle"}}
	uns := runner{Method: Method{Name: "unshare+chroot", Kind: "container",
		Detail: "unshare --fork --pid --mount --uts --ipc --net --root=ROOTFS: namespaces and chroot, no runtime"}}
	fork := runner{Method: Method{Name: "fork/exec", Kind: "process", Detail: "the workload binary from the rootfs, started directly: the floor"}}
	all := []*runner{&crun, &runc, &uns, &fork}

	if !b.selected("crun") && !b.selected("runc") && !b.selected("unshare+chroot") && !b.selected("fork/exec") {
		return nil
	}
	root, err := b.unpackRootfs()
	if err != nil {
		for _, r := range all {
			r.Unavailable = err.Error()
		}
		return []runner{crun, runc, uns, fork}
	}
	bundle := filepath.Dir(root)
	if err := writeOCIConfig(bundle, b.opt.Command); err != nil {
		for _, r := range all[:2] {
			r.Unavailable = err.Error()
		}
	}
	root0 := os.Geteuid() == 0

	// fork/exec
	if path, err := findInRoot(root, b.opt.Command[0]); err != nil {
		fork.Unavailable = err.Error()
	} else {
		fork.run = b.simple(launch{argv: append([]string{path}, b.opt.Command[1:]...), env: []string{"PATH=" + guestPath}})
	}

	// unshare+chroot
	switch unshare, err := exec.LookPath("unshare"); {
	case err != nil:
		uns.Unavailable = "unshare (util-linux) is not installed"
	case !root0:
		uns.Unavailable = "needs root (namespaces and chroot)"
	default:
		argv := append([]string{unshare, "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--root=" + root}, b.opt.Command...)
		uns.run = b.simple(launch{argv: argv, env: []string{"PATH=" + guestPath}})
	}

	// runc
	switch path, err := exec.LookPath("runc"); {
	case runc.Unavailable != "":
	case err != nil:
		runc.Unavailable = "runc is not installed (apt-get install runc)"
	case !root0:
		runc.Unavailable = "needs root (rootful runc)"
	default:
		runc.run = b.runtime(path, bundle, nil)
	}

	// crun
	switch path, err := exec.LookPath("crun"); {
	case crun.Unavailable != "":
	case err != nil:
		crun.Unavailable = "crun is not installed (apt-get install crun)"
	case !root0:
		crun.Unavailable = "needs root (rootful crun)"
	case hybridCgroups():
		// crun 1.8 refuses a hybrid cgroup layout (v1 controllers plus a
		// v2 hierarchy at /sys/fs/cgroup/unified). Starting it from a
		// private mount namespace without that v2 mount shows it plain
		// cgroup v1, and leaves the host untouched.
		t, err := newMountNSThread()
		if err != nil {
			crun.Unavailable = "hybrid cgroups, and a private mount namespace for crun failed: " + err.Error()
			break
		}
		crun.Detail += " (from a private mount namespace without /sys/fs/cgroup/unified: crun 1.8 refuses hybrid cgroups)"
		crun.run = b.runtime(path, bundle, t.start)
		crun.cleanup = t.close
	default:
		crun.run = b.runtime(path, bundle, nil)
	}
	return []runner{crun, runc, uns, fork}
}

// simple runs a launch and turns it into a sample.
func (b *bench) simple(l launch) func(context.Context) Sample {
	return func(ctx context.Context) Sample {
		l.timeout = b.opt.Timeout
		o, err := l.run(ctx)
		s := Sample{Exit: o.exit}
		switch {
		case err != nil:
			s.Err = err.Error()
		case o.status != 0:
			s.Err = fmt.Sprintf("%s exited with status %d%s", filepath.Base(l.argv[0]), o.status, o.tail())
		}
		if !s.OK() {
			return s
		}
		// The memory comes from a second, untimed start: watching the
		// process's memory costs CPU the timed start should not pay.
		l.pollHWM = true
		if o, err := l.run(ctx); err == nil && o.status == 0 && o.peakRSS > 0 {
			s.Memory = &Memory{PeakRSS: o.peakRSS}
		}
		return s
	}
}

var containerSeq atomic.Int64

// runtime runs the bundle with an OCI runtime (crun or runc): `run`
// creates, starts, waits for and deletes the container.
func (b *bench) runtime(path, bundle string, start func(*exec.Cmd) error) func(context.Context) Sample {
	name := filepath.Base(path)
	return func(ctx context.Context) Sample {
		id := fmt.Sprintf("kiln-bench-%d-%d", os.Getpid(), containerSeq.Add(1))
		l := launch{argv: []string{path, "run", "--bundle", bundle, id}, start: start}
		s := b.simple(l)(ctx)
		if !s.OK() {
			// Leave nothing behind from a failed start.
			del := exec.Command(path, "delete", "--force", id)
			if start != nil {
				_ = start(del)
				_ = del.Wait()
			} else {
				_ = del.Run()
			}
			s.Err = name + ": " + s.Err
		}
		return s
	}
}

// unpackRootfs unpacks the initramfs into WORK/bundle/rootfs.
func (b *bench) unpackRootfs() (string, error) {
	root := filepath.Join(b.work, "bundle", "rootfs")
	return root, UnpackRootfs(b.opt.Initrd, root)
}

// findInRoot finds a command in the rootfs's PATH directories and returns
// its host path.
func findInRoot(root, name string) (string, error) {
	if strings.Contains(name, "/") {
		p := filepath.Join(root, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("the workload %s is not in the initramfs", name)
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(guestPath) {
		p := filepath.Join(root, dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("the workload %s is not in the initramfs's %s", name, guestPath)
}

// writeOCIConfig writes the bundle's config.json: the workload as the
// process, a read-only root, /proc, a tmpfs /dev, and new pid, network,
// ipc, uts and mount namespaces: what `docker run --network none` gives.
func writeOCIConfig(bundle string, command []string) error {
	type obj = map[string]any
	cfg := obj{
		"ociVersion": "1.0.2",
		"process": obj{
			"terminal": false,
			"user":     obj{"uid": 0, "gid": 0},
			"args":     command,
			"env":      []string{"PATH=" + guestPath, "HOME=/"},
			"cwd":      "/",
			"capabilities": obj{
				"bounding":  []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"},
				"effective": []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"},
				"permitted": []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"},
			},
			"noNewPrivileges": true,
		},
		"root":     obj{"path": "rootfs", "readonly": true},
		"hostname": "kiln-bench",
		"mounts": []obj{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		"linux": obj{
			"namespaces": []obj{{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}},
		},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		return fmt.Errorf("write the OCI bundle's config.json: %w", err)
	}
	return nil
}

// hybridCgroups reports whether the host mounts cgroup v1 controllers with
// a v2 hierarchy beside them at /sys/fs/cgroup/unified.
func hybridCgroups() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err != nil {
		return false
	}
	var top unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &top); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC && top.Type != unix.CGROUP2_SUPER_MAGIC
}

// mountNSThread is an OS thread in a private mount namespace, from which
// commands are started so that they inherit it. unshare(CLONE_NEWNS) is
// allowed for one thread of a Go program (it gives that thread its own
// file-system context); the goroutine stays locked to the thread and
// never unlocks, so the runtime discards the thread when it ends instead of
// reusing it for other goroutines.
type mountNSThread struct {
	jobs chan func()
}

func newMountNSThread() (*mountNSThread, error) {
	t := &mountNSThread{jobs: make(chan func())}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		err := unix.Unshare(unix.CLONE_NEWNS)
		if err == nil {
			err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
		}
		if err == nil {
			err = unix.Unmount("/sys/fs/cgroup/unified", unix.MNT_DETACH)
		}
		errc <- err
		if err != nil {
			return
		}
		for job := range t.jobs {
			job()
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return t, nil
}

// start starts cmd from the thread.
func (t *mountNSThread) start(cmd *exec.Cmd) error {
	errc := make(chan error)
	t.jobs <- func() { errc <- cmd.Start() }
	return <-errc
}

func (t *mountNSThread) close() { close(t.jobs) }
