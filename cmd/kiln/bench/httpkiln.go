package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kiln-vmm/kiln/vmm/trace"
)

// The HTTP workload's kiln rows: `kiln run --net` booting the guest cold
// and `kiln run --restore` from a snapshot with a network device, each
// VM in a network namespace of the bench's own on a tap (ownNetns), the
// service reached at the guest's address from inside that namespace.

// guestNet is the --net of a VM in an ownNetns.
var guestNet = fmt.Sprintf("tap=kt0,ip=%s/24,gw=%s", nsGuestAddr, nsTapAddr)

// serviceURL is httpd's URL at the guest's address.
var serviceURL = fmt.Sprintf("http://%s:%d/", nsGuestAddr, servicePort)

func (b *bench) httpKilnRunners() []httpRunner {
	cold := httpRunner{Method: Method{Name: "kiln", Kind: "vm",
		Detail: "ip netns exec NS kiln run --net " + guestNet + " -- httpd: a cold boot on a tap in a namespace of the bench's own; ready: kiln's user-space report"}}
	cold.start = func(ctx context.Context, n int) (*instance, error) {
		args := []string{"run", "--kernel", b.opt.Kernel, "--initrd", b.opt.Initrd,
			"--memory", fmt.Sprintf("%dM", b.opt.Memory>>20), "--net", guestNet, "--"}
		return b.startKilnVM(ctx, n, append(args, serviceCommand...))
	}
	restore := httpRunner{Method: Method{Name: "kiln-restore", Kind: "vm",
		Detail: "ip netns exec NS kiln run --restore SNAP --net " + guestNet + " -- httpd: a snapshot of the guest at its init's readiness, taken once on a tap, restored on a tap of its own; httpd starts after the restore"}}
	ready := httpRunner{Method: Method{Name: "kiln-restore-ready", Kind: "vm"}}
	if os.Geteuid() != 0 {
		for _, r := range []*httpRunner{&cold, &restore, &ready} {
			r.Unavailable = "needs root (network namespaces and taps)"
		}
		return []httpRunner{cold, restore, ready}
	}
	if b.selected(restore.Name) {
		snap, took, err := b.netSnapshot(nil)
		if err != nil {
			restore.Unavailable = err.Error()
		} else {
			restore.Detail += fmt.Sprintf("; taking it took %s", FormatDuration(took))
			restore.start = func(ctx context.Context, n int) (*instance, error) {
				args := []string{"run", "--restore", snap, "--net", guestNet, "--"}
				return b.startKilnVM(ctx, n, append(args, serviceCommand...))
			}
		}
	}
	if b.selected(ready.Name) {
		ready = b.readyAppRunner()
	}
	return []httpRunner{cold, restore, ready}
}

// readyAppRunner is the HOOK for issue 21's ready-app snapshots: the
// service snapshotted once it accepts connections, so that a restore
// resumes it serving. `kiln snapshot --ready-port` is another branch's
// work; where this kiln has it, the row runs, otherwise it says why not.
// The calls follow issue 21 item 1: `kiln snapshot --out DIR
// --ready-port PORT [VM flags] -- CMD`, then `kiln run --restore DIR`
// resumes the app (no command).
func (b *bench) readyAppRunner() httpRunner {
	r := httpRunner{Method: Method{Name: "kiln-restore-ready", Kind: "vm",
		Detail: "kiln run --restore SNAP --net " + guestNet + ": a ready-app snapshot (kiln snapshot --ready-port 8080 -- httpd), httpd resumed serving"}}
	help, _ := exec.Command(b.opt.Kiln, "snapshot", "--help").CombinedOutput()
	if !strings.Contains(string(help), "--ready-port") {
		r.Unavailable = "this kiln's snapshot has no --ready-port (ready-app snapshots, issue 21 item 1, are not on this branch yet)"
		return r
	}
	snap, took, err := b.netSnapshot(append([]string{"--ready-port", fmt.Sprint(servicePort), "--"}, serviceCommand...))
	if err != nil {
		r.Unavailable = err.Error()
		return r
	}
	r.Detail += fmt.Sprintf("; taking it took %s", FormatDuration(took))
	r.start = func(ctx context.Context, n int) (*instance, error) {
		return b.startKilnVM(ctx, n, []string{"run", "--restore", snap, "--net", guestNet})
	}
	return r
}

// netSnapshot takes a snapshot of the guest with a network device, on a
// tap in a namespace of its own; extra are kiln snapshot's flags after
// the VM's (a ready condition and the command).
func (b *bench) netSnapshot(extra []string) (string, time.Duration, error) {
	name := "snapshot"
	if len(extra) > 0 {
		name = "snapshot-ready"
	}
	dir := filepath.Join(b.work, name)
	ns, err := newOwnNetns(fmt.Sprintf("kiln-bh-%d-%s", os.Getpid(), name))
	if err != nil {
		return "", 0, err
	}
	defer ns.remove()
	b.progress("%s: taking the snapshot the rounds restore (one cold boot)", name)
	args := []string{"netns", "exec", ns.name, b.opt.Kiln, "snapshot", "--out", dir, "--kernel", b.opt.Kernel,
		"--initrd", b.opt.Initrd, "--memory", fmt.Sprintf("%dM", b.opt.Memory>>20), "--net", "tap=kt0"}
	start := time.Now()
	out, err := exec.Command("ip", append(args, extra...)...).CombinedOutput()
	if err != nil {
		return "", 0, fmt.Errorf("kiln snapshot --net failed: %v: %s", err, lastLine(out))
	}
	took := time.Since(start)
	b.progress("%s: taken in %s", name, FormatDuration(took))
	return dir, took, nil
}

// startKilnVM starts `kiln ARGS` in a namespace of its own and returns
// once it is started; ready is kiln's report of guest user space.
func (b *bench) startKilnVM(ctx context.Context, n int, args []string) (*instance, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("needs root (network namespaces and taps)")
	}
	ns, err := newOwnNetns(fmt.Sprintf("kiln-bh-%d-%d", os.Getpid(), n))
	if err != nil {
		return nil, err
	}
	full := append(append([]string{"netns", "exec", ns.name, b.opt.Kiln}, args[0]), reportArgs...)
	p, err := startReporting(exec.Command("ip", append(full, args[1:]...)...))
	if err != nil {
		ns.remove()
		return nil, err
	}
	inst := &instance{t0: p.t0, url: serviceURL, dial: ns.dial, dead: p.dead}
	inst.procs = func() ([]int, int, error) {
		if err := p.dead(); err != nil {
			return nil, 0, err
		}
		return []int{p.cmd.Process.Pid}, p.cmd.Process.Pid, nil
	}
	// kiln's report of user space comes at once for a restore, within
	// the boot for a cold one; the first 200 comes later in both.
	inst.ready = p.readyWithin(ctx, b.opt.Timeout)
	inst.stop = func() error {
		// kiln ends a VM on SIGTERM (and exits 130).
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		err := p.wait(30 * time.Second)
		if rerr := ns.remove(); err == nil {
			err = rerr
		}
		return err
	}
	return inst, nil
}

// reporting is a kiln process started with its report on a pipe.
type reporting struct {
	cmd     *exec.Cmd
	t0      time.Time
	mu      sync.Mutex
	ready   time.Duration
	readyCh chan struct{}
	lines   []string
	exited  chan struct{}
	werr    error
}

func startReporting(cmd *exec.Cmd) (*reporting, error) {
	p := &reporting{cmd: cmd, readyCh: make(chan struct{}), exited: make(chan struct{})}
	repR, repW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		repR.Close()
		repW.Close()
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{repW}
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.t0 = time.Now()
	err = cmd.Start()
	repW.Close()
	outW.Close()
	if err != nil {
		repR.Close()
		outR.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	var once sync.Once
	go func() {
		defer repR.Close()
		dec := json.NewDecoder(repR)
		for {
			var e trace.Event
			if dec.Decode(&e) != nil {
				return
			}
			if e.Event == "userspace" {
				once.Do(func() {
					p.mu.Lock()
					p.ready = time.Since(p.t0)
					p.mu.Unlock()
					close(p.readyCh)
				})
			}
		}
	}()
	go func() {
		defer outR.Close()
		br := bufio.NewReader(io.LimitReader(outR, 64<<20))
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				p.mu.Lock()
				p.lines = append(p.lines, strings.TrimRight(line, "\r\n"))
				if len(p.lines) > 5 {
					p.lines = p.lines[1:]
				}
				p.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.werr = err
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

// readyWithin waits for the user-space report (or the process's end, or
// the timeout) and returns launch to it; 0 if there was none.
func (p *reporting) readyWithin(ctx context.Context, timeout time.Duration) time.Duration {
	select {
	case <-p.readyCh:
	case <-p.exited:
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// dead says why the process ended, or nil while it runs.
func (p *reporting) dead() error {
	select {
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return fmt.Errorf("kiln exited (%v); it printed: %s", p.werr, strings.Join(p.lines, " | "))
	default:
		return nil
	}
}

// wait waits for the process to end; after d it kills its group and
// says so.
func (p *reporting) wait(d time.Duration) error {
	select {
	case <-p.exited:
		return nil
	case <-time.After(d):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("kiln did not end within %v of SIGTERM (killed)", d)
	}
}
