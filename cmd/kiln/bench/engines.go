package bench

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

// Container engines with runc and with kiln as their OCI runtime: the same
// image, built from the initramfs (podman import of the unpacked rootfs),
// run to its exit by `podman run --rm` and by `ctr run --rm` (containerd
// 1.6, its runc shim calling the binary --runc-binary names). This is the
// start-up a user of an engine sees, engine included: the rows with runc
// are a container, the rows with kiln a microVM per container, restored
// from kiln's warm OCI snapshot (docs/oci.md). The first kiln start on a
// machine takes that snapshot (a cold boot); the warm-up round pays it.

const benchImage = "localhost/kiln-bench:latest"

// podmanUlimits: the hosts this project runs on have a hard nofile limit
// below podman's default (shared/notes/containers-host.md).
var podmanUlimits = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}

// engineMethods returns the podman and containerd rows.
func (b *bench) engineMethods() []runner {
	kiln, kernel, initrd := absPath(b.opt.Kiln), absPath(b.opt.Kernel), absPath(b.opt.Initrd)
	podRunc := runner{Method: Method{Name: "podman+runc", Kind: "container", Detail: "podman run --rm --runtime runc --network none, on an image of the initramfs"}}
	podKiln := runner{Method: Method{Name: "podman+kiln", Kind: "container", Detail: "podman run --rm --runtime kiln --network none: a microVM per container, restored from the warm OCI snapshot"}}
	ctrRunc := runner{Method: Method{Name: "ctr+runc", Kind: "container", Detail: "ctr run --rm (containerd 1.6, runc shim) with runc"}}
	ctrKiln := runner{Method: Method{Name: "ctr+kiln", Kind: "container", Detail: "ctr run --rm --runc-binary kiln"}}
	rows := func() []runner { return []runner{podRunc, podKiln, ctrRunc, ctrKiln} }
	p, runc, ok := b.engineSetup(&podRunc.Method, &podKiln.Method, &ctrRunc.Method, &ctrKiln.Method)
	if !ok {
		return rows()
	}
	if p == nil {
		return nil
	}
	podRunc.cleanup = p.close
	base := append(append([]string{"podman"}, p.args...), "run", "--rm", "--network", "none")
	base = append(base, podmanUlimits...)
	if podRunc.Unavailable == "" {
		podRunc.run = b.timed("podman", append(append(append([]string{}, base...), "--runtime", runc, benchImage), b.opt.Command...), nil)
	}
	// kiln's guest: --kernel and --initrd as global flags of every call.
	// And the file of kiln's phase marks, for the breakdown.
	podPhases := filepath.Join(b.work, "podman+kiln.phases")
	kilnArgs := append(append([]string{}, base...), "--runtime", kiln,
		"--runtime-flag", "kernel="+kernel, "--runtime-flag", "initrd="+initrd,
		"--runtime-flag", "phases="+podPhases, benchImage)
	podKiln.run = b.timedSteps(podKiln.Name, b.timed("podman", append(kilnArgs, b.opt.Command...), nil), podPhases)

	if !b.selected("ctr+runc") && !b.selected("ctr+kiln") {
		return rows()
	}
	c, err := b.newBenchContainerd(p, kernel, initrd)
	if err != nil {
		unavailable(err.Error(), &ctrRunc.Method, &ctrKiln.Method)
		return rows()
	}
	ctrRunc.cleanup = c.close
	if ctrRunc.Unavailable == "" {
		ctrRunc.run = b.ctrRun(c, runc)
	}
	ctrKiln.run = b.timedSteps(ctrKiln.Name, b.ctrRun(c, kiln), c.phases)
	return rows()
}

// engineSetup checks what every engine row needs (root, podman, and
// runc for the runc rows: podRunc and ctrRunc) and makes the bench's
// podman with its image. A row that cannot run says why. It returns
// ok false when no row can run; a nil podman with ok true when none of
// the rows is selected.
func (b *bench) engineSetup(podRunc, podKiln, ctrRunc, ctrKiln *Method) (p *benchPodman, runc string, ok bool) {
	all := []*Method{podRunc, podKiln, ctrRunc, ctrKiln}
	any := false
	for _, m := range all {
		any = any || b.selected(m.Name)
	}
	if !any {
		return nil, "", true
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		unavailable("runc is not installed (apt-get install runc)", podRunc, ctrRunc)
	}
	if os.Geteuid() != 0 {
		unavailable("needs root (rootful podman and containerd)", all...)
		return nil, "", false
	}
	if _, err := exec.LookPath("podman"); err != nil {
		unavailable("podman is not installed (apt-get install podman); the containerd rows import its image too", all...)
		return nil, "", false
	}
	if p, err = b.newBenchPodman(); err != nil {
		unavailable(err.Error(), all...)
		return nil, "", false
	}
	return p, runc, true
}

// unavailable marks the methods that have no reason yet as unable to
// run, for why.
func unavailable(why string, ms ...*Method) {
	for _, m := range ms {
		if m.Unavailable == "" {
			m.Unavailable = why
		}
	}
}

// timed starts argv once and times it to its exit, without the second,
// memory-watching start b.simple makes (an engine's own memory is not the
// container's).
func (b *bench) timed(name string, argv []string, env []string) func(context.Context) Sample {
	return func(ctx context.Context) Sample {
		l := launch{argv: argv, env: env, timeout: b.opt.Timeout}
		o, err := l.run(ctx)
		s := Sample{Exit: o.exit, launched: o.t0}
		switch {
		case err != nil:
			s.Err = err.Error()
		case o.status != 0:
			s.Err = fmt.Sprintf("%s exited with status %d%s", name, o.status, o.tail())
		}
		return s
	}
}

// benchPodman is podman with storage of its own in the bench's scratch
// directory, holding the image.
type benchPodman struct {
	args []string // podman's global flags
	dir  string
}

func (b *bench) newBenchPodman() (*benchPodman, error) {
	dir := filepath.Join(b.work, "podman")
	p := &benchPodman{dir: dir, args: []string{
		"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs",
		"--events-backend", "file", "--log-level", "error",
	}}
	root := filepath.Join(dir, "rootfs")
	if err := UnpackRootfs(b.opt.Initrd, root); err != nil {
		return nil, err
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	if err := TarDir(root, tarball); err != nil {
		return nil, fmt.Errorf("the image's tarball: %w", err)
	}
	out, err := exec.Command("podman", append(append([]string{}, p.args...), "import", "--change", "ENV PATH="+guestPath, tarball, benchImage)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("podman import: %v: %s", err, lastLine(out))
	}
	return p, nil
}

func (p *benchPodman) close() {
	exec.Command("podman", append(append([]string{}, p.args...), "rm", "--all", "--force")...).Run()
	exec.Command("podman", append(append([]string{}, p.args...), "rmi", "--all", "--force")...).Run()
}

// benchContainerd is a containerd of the bench's own: its own root, state
// and socket, so it neither needs nor touches the host's.
type benchContainerd struct {
	sock   string
	cmd    *exec.Cmd
	phases string // the file of kiln's phase marks (ctr+kiln)
}

func (b *bench) newBenchContainerd(p *benchPodman, kernel, initrd string) (*benchContainerd, error) {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return nil, fmt.Errorf("containerd is not installed (apt-get install containerd)")
	}
	if _, err := exec.LookPath("ctr"); err != nil {
		return nil, fmt.Errorf("ctr is not installed (apt-get install containerd)")
	}
	dir := filepath.Join(b.work, "ctd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte("version = 2\n"), 0o600); err != nil {
		return nil, err
	}
	c := &benchContainerd{sock: filepath.Join(dir, "sock"), phases: filepath.Join(b.work, "ctr+kiln.phases")}
	c.cmd = exec.Command(bin, "--config", conf, "--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"), "--address", c.sock)
	// The runc shim passes containerd's environment to the runtime: kiln
	// finds its guest here.
	c.cmd.Env = append(os.Environ(), "KILN_KERNEL="+kernel, "KILN_INITRD="+initrd, oci.PhasesEnv+"="+c.phases)
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	logf.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command("ctr", "--address", c.sock, "version").Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			c.close()
			return nil, fmt.Errorf("containerd did not start (see its log)")
		}
	}
	archive := filepath.Join(dir, "image.tar")
	if out, err := exec.Command("podman", append(append([]string{}, p.args...), "save", "--format", "docker-archive", "-o", archive, benchImage)...).CombinedOutput(); err != nil {
		c.close()
		return nil, fmt.Errorf("podman save: %v: %s", err, lastLine(out))
	}
	if out, err := exec.Command("ctr", "--address", c.sock, "image", "import", archive).CombinedOutput(); err != nil {
		c.close()
		return nil, fmt.Errorf("ctr image import: %v: %s", err, lastLine(out))
	}
	return c, nil
}

func (c *benchContainerd) close() {
	if c.cmd.Process != nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

var ctrSeq atomic.Int64

// ctrRun runs the image with ctr and the runtime binary.
func (b *bench) ctrRun(c *benchContainerd, binary string) func(context.Context) Sample {
	return func(ctx context.Context) Sample {
		id := fmt.Sprintf("kiln-bench-%d", ctrSeq.Add(1))
		argv := append([]string{"ctr", "--address", c.sock, "run", "--rm", "--runc-binary", binary, benchImage, id}, b.opt.Command...)
		return b.timed("ctr", argv, nil)(ctx)
	}
}

// TarDir writes the directory dir as a tar archive at out, as podman
// import takes a root file system.
func TarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// timedSteps runs an engine's sample with kiln as its runtime, kiln's
// phase marks going to the file phases (emptied before each start), and
// splits the sample's launch → exit into the phases of the marks
// (oci.Breakdown). A sample whose marks cannot be split keeps its time,
// with no steps, and the progress says why.
func (b *bench) timedSteps(method string, run func(context.Context) Sample, phases string) func(context.Context) Sample {
	return func(ctx context.Context) Sample {
		if err := os.WriteFile(phases, nil, 0o600); err != nil {
			return Sample{Err: fmt.Sprintf("the phase marks' file: %v", err)}
		}
		s := run(ctx)
		if !s.OK() {
			return s
		}
		marks, err := oci.ReadMarks(phases)
		var spans []oci.Span
		if err == nil {
			spans, err = oci.Breakdown(marks, s.launched, s.launched.Add(s.Exit))
		}
		if err != nil {
			b.progress("%s: no phase breakdown: %v", method, err)
			return s
		}
		for _, x := range spans {
			s.Steps = append(s.Steps, Step{Name: x.Name, Took: x.Took})
		}
		return s
	}
}
