package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-vmm/kiln/cmd/kiln/oci"
)

// The HTTP workload's engine rows: podman with a published port (-p
// HOSTPORT:8080, podman's default network, netavark), and ctr run --cni
// with a bridge network of the bench's own, each with runc and with kiln
// as the runtime. The instance's processes are the engine's monitor
// (conmon, the containerd shim) and everything under it.

// httpPortBase is the first host port the podman rows publish on.
const httpPortBase = 28000

func (b *bench) httpEngineRunners() []httpRunner {
	kiln, kernel, initrd := absPath(b.opt.Kiln), absPath(b.opt.Kernel), absPath(b.opt.Initrd)
	podRunc := httpRunner{Method: Method{Name: "podman+runc", Kind: "container", Detail: "podman run -d --runtime runc -p PORT:8080 IMG httpd; ready: podman run -d returns; memory: conmon and what runs under it"}}
	podKiln := httpRunner{Method: Method{Name: "podman+kiln", Kind: "container", Detail: "podman run -d --runtime kiln -p PORT:8080 IMG httpd: a microVM restored from the warm OCI snapshot, on podman's network; memory: conmon and kiln's VMM"}}
	ctrRunc := httpRunner{Method: Method{Name: "ctr+runc", Kind: "container", Detail: "ctr run -d --cni (bridge + host-local, the bench's own) with runc, reached at its CNI address; memory: the shim and what runs under it"}}
	ctrKiln := httpRunner{Method: Method{Name: "ctr+kiln", Kind: "container", Detail: "ctr run -d --cni --runc-binary kiln: the VMM in a network namespace of its own, joined at start to what CNI made there"}}
	rows := func() []httpRunner { return []httpRunner{podRunc, podKiln, ctrRunc, ctrKiln} }
	p, runc, ok := b.engineSetup(&podRunc.Method, &podKiln.Method, &ctrRunc.Method, &ctrKiln.Method)
	if !ok {
		return rows()
	}
	if p == nil {
		return nil
	}
	podRunc.cleanup = p.close
	if podRunc.Unavailable == "" {
		podRunc.start = b.podmanServe(p, []string{"--runtime", runc}, false)
	}
	podKiln.start = b.podmanServe(p, []string{"--runtime", kiln, "--runtime-flag", "kernel=" + kernel, "--runtime-flag", "initrd=" + initrd}, true)

	if !b.selected("ctr+runc") && !b.selected("ctr+kiln") {
		return rows()
	}
	c, err := b.newBenchContainerd(p, kernel, initrd)
	if err != nil {
		unavailable(err.Error(), &ctrRunc.Method, &ctrKiln.Method)
		return rows()
	}
	cni, err := b.newBenchCNI()
	if err != nil {
		c.close()
		unavailable(err.Error(), &ctrRunc.Method, &ctrKiln.Method)
		return rows()
	}
	ctrRunc.cleanup = func() { cni.close(); c.close() }
	if ctrRunc.Unavailable == "" {
		ctrRunc.start = b.ctrServe(c, cni, runc)
	}
	ctrKiln.start = b.ctrServe(c, cni, kiln)
	return rows()
}

// podmanServe runs the service detached with a published port.
func (b *bench) podmanServe(p *benchPodman, runtime []string, isKiln bool) func(context.Context, int) (*instance, error) {
	return func(ctx context.Context, n int) (*instance, error) {
		name := fmt.Sprintf("kiln-bench-http-%d", n)
		port := httpPortBase + n%10000
		argv := append(append([]string{}, p.args...), "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:%d", port, servicePort))
		argv = append(append(argv, podmanUlimits...), runtime...)
		argv = append(append(argv, benchImage), serviceCommand...)
		podman := func(args ...string) (string, error) {
			out, err := exec.CommandContext(ctx, "podman", append(append([]string{}, p.args...), args...)...).CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("podman %s: %v: %s", args[0], err, lastLine(out))
			}
			return strings.TrimSpace(string(out)), nil
		}
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, "podman", argv...).CombinedOutput()
		ready := time.Since(t0)
		if err != nil {
			exec.Command("podman", append(append([]string{}, p.args...), "rm", "--force", name)...).Run()
			return nil, fmt.Errorf("podman run -d: %v: %s", err, lastLine(out))
		}
		info, err := podman("inspect", "--format", "{{.State.Pid}} {{.State.ConmonPid}} {{.NetworkSettings.SandboxKey}}", name)
		f := strings.Fields(info)
		if err != nil || len(f) < 2 {
			exec.Command("podman", append(append([]string{}, p.args...), "rm", "--force", name)...).Run()
			return nil, fmt.Errorf("podman inspect %s: %q %v", name, info, err)
		}
		pid, _ := strconv.Atoi(f[0])
		conmon, _ := strconv.Atoi(f[1])
		netns := ""
		if len(f) > 2 {
			netns = f[2]
		}
		inst := &instance{t0: t0, ready: ready, url: fmt.Sprintf("http://127.0.0.1:%d/", port), guestKiB: oci.Memory >> 10}
		inst.dead = func() error {
			if !alive(pid) {
				return fmt.Errorf("the container's process %d ended", pid)
			}
			return nil
		}
		inst.procs = func() ([]int, int, error) {
			if !alive(conmon) {
				return nil, 0, fmt.Errorf("conmon (%d) is gone", conmon)
			}
			vmm := 0
			if isKiln {
				vmm = pid // kiln's container pid is its VMM
			}
			return processTree(conmon), vmm, nil
		}
		inst.stop = func() error {
			pids := processTree(conmon)
			out, err := exec.Command("podman", append(append([]string{}, p.args...), "rm", "--force", "--time", "10", name)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("podman rm: %v: %s", err, lastLine(out))
			}
			return checkGone(pids, netns)
		}
		return inst, nil
	}
}

// checkGone checks that the processes and the network namespace file
// are gone, giving them a few seconds.
func checkGone(pids []int, netns string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, fmt.Sprintf("process %d", pid))
			}
		}
		if netns != "" {
			if _, err := os.Stat(netns); err == nil {
				left = append(left, "network namespace "+netns)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("left behind: %s", strings.Join(left, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// benchCNI is a CNI configuration of the bench's own for ctr run --cni:
// a bridge with host-local addresses in a directory of the bench's. ctr
// reads its configuration from /etc/cni/net.d only, so ctr is started in
// a mount namespace of its own where that directory is the bench's: the
// host's stays as it is.
type benchCNI struct {
	netd, ipam, bridge string
	resultsMade        bool
}

const cniNetName = "kiln-bench-http"

func (b *bench) newBenchCNI() (*benchCNI, error) {
	plugins := "/usr/lib/cni"
	if _, err := os.Stat(filepath.Join(plugins, "bridge")); err != nil {
		return nil, fmt.Errorf("the CNI plugins are not in %s (apt-get install containernetworking-plugins)", plugins)
	}
	if _, err := os.Stat("/etc/cni/net.d"); err != nil {
		return nil, fmt.Errorf("/etc/cni/net.d does not exist, so ctr's configuration cannot be bound over it")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return nil, fmt.Errorf("unshare (util-linux) is not installed")
	}
	dir := filepath.Join(b.work, "cni")
	c := &benchCNI{netd: filepath.Join(dir, "net.d"), ipam: filepath.Join(dir, "ipam"), bridge: fmt.Sprintf("kbh%d", os.Getpid()%100000)}
	if err := os.MkdirAll(c.netd, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": %q, "plugins": [{"type": "bridge", "bridge": %q,
	"isGateway": true, "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": "10.99.78.0/24"}]]}}]}`,
		cniNetName, c.bridge, c.ipam)
	if err := os.WriteFile(filepath.Join(c.netd, "10-kiln-bench.conflist"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	_, err := os.Stat("/var/lib/cni")
	c.resultsMade = os.IsNotExist(err)
	return c, nil
}

// address finds the address host-local gave the container id: its lease
// is a file named by the address, holding the id.
func (c *benchCNI) address(id string) (string, error) {
	dir := filepath.Join(c.ipam, cniNetName)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("CNI's address leases: %w", err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(data)), id) {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("no address lease for %s in %s", id, dir)
}

// release removes what ctr run -d leaves of a container's network once
// its task is gone: it runs no CNI DEL for a detached task, so its
// address lease and cached result stay. The veth went with the task's
// namespace.
func (c *benchCNI) release(id string) {
	dir := filepath.Join(c.ipam, cniNetName)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if data, err := os.ReadFile(p); err == nil && strings.HasPrefix(strings.TrimSpace(string(data)), id) {
			os.Remove(p)
		}
	}
	res, _ := filepath.Glob("/var/lib/cni/results/" + cniNetName + "-" + id + "-*")
	for _, r := range res {
		os.Remove(r)
	}
}

func (c *benchCNI) close() {
	exec.Command("ip", "link", "del", c.bridge).Run()
	if c.resultsMade {
		os.Remove("/var/lib/cni/results")
		os.Remove("/var/lib/cni")
	}
}

// ctrServe runs the service detached with ctr run --cni and the runtime
// binary.
func (b *bench) ctrServe(c *benchContainerd, cni *benchCNI, binary string) func(context.Context, int) (*instance, error) {
	return func(ctx context.Context, n int) (*instance, error) {
		id := fmt.Sprintf("kiln-bench-http-%d", n)
		ctr := func(args ...string) (string, error) {
			out, err := exec.Command("ctr", append([]string{"--address", c.sock}, args...)...).CombinedOutput()
			return string(out), err
		}
		remove := func() {
			ctr("task", "kill", "-s", "KILL", id)
			for i := 0; i < 50 && taskPid(ctr, id) > 0; i++ {
				time.Sleep(100 * time.Millisecond)
			}
			ctr("task", "rm", "--force", id)
			ctr("container", "rm", id)
			cni.release("default-" + id)
		}
		script := fmt.Sprintf("mount --make-rprivate / && mount --bind %s /etc/cni/net.d && exec ctr --address %s run -d --cni --runc-binary %s %s %s %s",
			cni.netd, c.sock, binary, benchImage, id, strings.Join(serviceCommand, " "))
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, "unshare", "--mount", "sh", "-c", script).CombinedOutput()
		ready := time.Since(t0)
		if err != nil {
			remove()
			return nil, fmt.Errorf("ctr run -d --cni: %v: %s", err, lastLine(out))
		}
		ip, err := cni.address("default-" + id)
		if err != nil {
			remove()
			return nil, err
		}
		pid := taskPid(ctr, id)
		if pid <= 0 {
			remove()
			return nil, fmt.Errorf("ctr task ls has no running task %s", id)
		}
		shim, err := parentOf(pid)
		if err != nil {
			remove()
			return nil, fmt.Errorf("the task's shim: %w", err)
		}
		isKiln := binary == absPath(b.opt.Kiln)
		inst := &instance{t0: t0, ready: ready, url: fmt.Sprintf("http://%s:%d/", ip, servicePort), guestKiB: oci.Memory >> 10}
		inst.dead = func() error {
			if !alive(pid) {
				return fmt.Errorf("the task's process %d ended", pid)
			}
			return nil
		}
		inst.procs = func() ([]int, int, error) {
			vmm := 0
			if isKiln {
				vmm = pid
			}
			return processTree(shim), vmm, nil
		}
		inst.stop = func() error {
			pids := processTree(shim)
			ctr("task", "kill", "-s", "TERM", id)
			for deadline := time.Now().Add(15 * time.Second); taskPid(ctr, id) > 0 && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
			}
			remove()
			if out, _ := ctr("container", "ls", "-q"); strings.Contains(out, id) {
				return fmt.Errorf("ctr still lists the container %s", id)
			}
			return checkGone(pids, "")
		}
		return inst, nil
	}
}

// taskPid is the pid of id's running task in ctr task ls, or 0.
func taskPid(ctr func(...string) (string, error), id string) int {
	out, _ := ctr("task", "ls")
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == id && f[2] == "RUNNING" {
			pid, _ := strconv.Atoi(f[1])
			return pid
		}
	}
	return 0
}
