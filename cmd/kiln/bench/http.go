package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// The HTTP workload (`kiln bench --workload http`, issue 19's REST-API
// benchmark): the same service, the image's /bbin/httpd (guest/httpd),
// started by each method, interleaved for the rounds, and measured as a
// user of it sees it:
//
//   - launch → first HTTP 200 the host gets, polling every 20 ms, and
//     launch → ready as the method itself reports it (`podman run -d`
//     and `ctr run -d` returning, kiln's user-space report);
//   - a fixed, bounded burst of GETs from the host (Burst): latency p50
//     and p99, requests per second;
//   - the memory of every process the instance keeps running, the VMM's
//     guest memory and overhead apart;
//   - the time to stop it and whether anything of it was left.
//
// Then K instances of a method at once (density): the time until every
// one answered, and their total memory.

// HTTPMethodNames are the HTTP workload's methods, in table order.
var HTTPMethodNames = []string{"podman+runc", "podman+kiln", "ctr+runc", "ctr+kiln", "kiln", "kiln-restore", "kiln-restore-ready"}

// httpDensityMethods are the methods the density runs start, K at once
// for each K of --density, those available.
var httpDensityMethods = []string{"podman+runc", "kiln", "kiln-restore"}

// httpCloneMethods are those whose density runs are clones of one
// snapshot, K at once for each K of --restore-density (32 unless told):
// issue 21's clones of a ready-app snapshot serving at once, and the
// clone rate.
var httpCloneMethods = []string{"kiln-restore-ready"}

// servicePort is the port httpd listens on in every instance.
const servicePort = 8080

// serviceCommand is the service, as every method starts it.
var serviceCommand = []string{"httpd", "-addr", fmt.Sprintf(":%d", servicePort)}

// DefaultBurst is the burst of the HTTP workload unless told otherwise.
var DefaultBurst = BurstSpec{Requests: 500, Conns: 4, KeepAlive: true, Deadline: 2 * time.Minute}

// instance is one running service, as a method started it.
type instance struct {
	t0    time.Time     // launch
	ready time.Duration // launch to ready as the method reports it; 0 if it reports nothing
	url   string
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	// procs lists the instance's processes now and which is the VMM (0
	// for none).
	procs func() (pids []int, vmm int, err error)
	// dead says why the instance already ended, or nil while it runs.
	dead func() error
	// stop ends the instance and checks that nothing of it is left.
	stop func() error
	// guestKiB is the guest memory of its VM, if it is one (0: the
	// bench's --memory).
	guestKiB uint64
}

// guestSize is the instance's guest memory in KiB, to find its mapping.
func (b *bench) guestSize(inst *instance) uint64 {
	if inst.guestKiB > 0 {
		return inst.guestKiB
	}
	return b.opt.Memory >> 10
}

// httpRunner is one method of the HTTP workload.
type httpRunner struct {
	Method
	// start launches instance n (unique in the run) and returns once the
	// method's own launch returned: it still has to answer.
	start   func(ctx context.Context, n int) (*instance, error)
	cleanup func()
}

// runHTTP is Run for the HTTP workload.
func (b *bench) runHTTP(ctx context.Context) (*Results, error) {
	res := b.res
	res.Settings.Workload = "http"
	res.Settings.Command = serviceCommand
	spec := b.opt.Burst
	res.Settings.Burst = &spec
	runners := b.httpRunners(ctx)
	defer func() {
		for _, r := range runners {
			if r.cleanup != nil {
				r.cleanup()
			}
		}
	}()
	var active []int
	for i, r := range runners {
		if r.Unavailable != "" {
			b.progress("%s: unavailable: %s", r.Name, r.Unavailable)
		} else {
			active = append(active, i)
		}
	}
	seq := 0
	slots := Schedule(len(active), b.opt.Warmup, b.opt.Rounds)
	for n, slot := range slots {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := &runners[active[slot.Method]]
		seq++
		s := b.serveOnce(ctx, r, seq)
		s.Round, s.Warmup = slot.Round, slot.Warmup
		r.Samples = append(r.Samples, s)
		b.progress("[%d/%d] round %d%s %s: %s", n+1, len(slots), slot.Round, warmTag(slot.Warmup), r.Name, describeHTTP(s))
	}
	for _, r := range runners {
		res.Methods = append(res.Methods, r.Method)
	}
	type densityRun struct {
		name string
		ks   []int
	}
	var runs []densityRun
	for _, name := range httpDensityMethods {
		runs = append(runs, densityRun{name, b.opt.Density})
	}
	for _, name := range httpCloneMethods {
		runs = append(runs, densityRun{name, b.opt.RestoreDensity})
	}
	for _, run := range runs {
		name := run.name
		var r *httpRunner
		for i := range runners {
			if runners[i].Name == name && runners[i].Unavailable == "" {
				r = &runners[i]
			}
		}
		if r == nil {
			continue
		}
		for _, k := range run.ks {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			b.progress("density: %d × %s serving at once", k, name)
			d := b.httpDensity(ctx, r, k, &seq)
			b.progress("density: %s", describeDensity(d))
			res.Density = append(res.Density, d)
		}
	}
	res.Goals = CheckHTTPGoals(res)
	return res, nil
}

// serveOnce starts one instance, waits for its first 200, bursts it,
// samples its memory and stops it.
func (b *bench) serveOnce(ctx context.Context, r *httpRunner, n int) Sample {
	ctx, cancel := context.WithTimeout(ctx, b.opt.Timeout)
	defer cancel()
	inst, err := r.start(ctx, n)
	if err != nil {
		return Sample{Err: err.Error()}
	}
	s := Sample{Ready: inst.ready}
	at, err := firstOK(ctx, inst.url, inst.dial, 20*time.Millisecond, inst.dead)
	if err != nil {
		s.Err = err.Error()
	} else {
		s.FirstHTTP = at.Sub(inst.t0)
		spec := b.opt.Burst
		spec.URL, spec.Dial = inst.url, inst.dial
		br := Burst(ctx, spec)
		s.Burst = &br
		if br.Requests == 0 {
			s.Err = "the burst got no answer: " + br.FirstErr
		}
		if pids, vmm, err := inst.procs(); err != nil {
			s.Err = "memory: " + err.Error()
		} else if m, err := instanceMemory(pids, vmm, b.guestSize(inst)); err != nil {
			s.Err = "memory: " + err.Error()
		} else {
			s.Memory = &m
		}
	}
	t := time.Now()
	if err := inst.stop(); err != nil {
		s.TeardownErr = err.Error()
	}
	s.Teardown = time.Since(t)
	return s
}

// httpDensity starts k instances of r at once and measures the time
// until every one answered 200, and their memory then.
func (b *bench) httpDensity(ctx context.Context, r *httpRunner, k int, seq *int) Density {
	d := Density{VMs: k, Method: r.Name, Restored: r.Name == "kiln-restore" || r.Name == "kiln-restore-ready"}
	cpus := max(b.opt.Host.CPUs, 1)
	ctx, cancel := context.WithTimeout(ctx, b.opt.Timeout*time.Duration((k+cpus-1)/cpus+1))
	defer cancel()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		insts []*instance
		errs  []string
		start = time.Now()
	)
	first := *seq + 1
	*seq += k
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			inst, err := r.start(ctx, n)
			if err == nil {
				mu.Lock()
				insts = append(insts, inst)
				mu.Unlock()
				var at time.Time
				if at, err = firstOK(ctx, inst.url, inst.dial, 50*time.Millisecond, inst.dead); err == nil {
					mu.Lock()
					d.Each = append(d.Each, at.Sub(start))
					mu.Unlock()
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		}(first + i)
	}
	wg.Wait()
	d.AllServing = time.Since(start)
	if d.Restored && len(d.Each) == k {
		// The clone rate, as Firecracker counts VMs created per host core
		// per second: here to serving, not only to created.
		d.PerSecond = float64(k) / d.AllServing.Seconds()
		d.PerCoreSecond = d.PerSecond / float64(cpus)
	}
	for _, inst := range insts {
		pids, vmm, err := inst.procs()
		if err == nil {
			var m Memory
			if m, err = instanceMemory(pids, vmm, b.guestSize(inst)); err == nil {
				d.TotalRSS += m.RSS
				d.TotalPSS += m.PSS
				d.TotalOverhead += m.Overhead
			}
		}
		if err != nil {
			errs = append(errs, "memory: "+err.Error())
		}
	}
	var stops sync.WaitGroup
	for _, inst := range insts {
		stops.Add(1)
		go func(inst *instance) {
			defer stops.Done()
			if err := inst.stop(); err != nil {
				mu.Lock()
				errs = append(errs, "teardown: "+err.Error())
				mu.Unlock()
			}
		}(inst)
	}
	stops.Wait()
	if len(errs) > 0 {
		d.Err = fmt.Sprintf("%d of %d: %s", len(errs), k, strings.Join(errs, "; "))
	}
	return d
}

// describeHTTP is an HTTP sample in a progress line.
func describeHTTP(s Sample) string {
	var parts []string
	if s.Ready > 0 {
		parts = append(parts, "ready "+FormatDuration(s.Ready))
	}
	if s.FirstHTTP > 0 {
		parts = append(parts, "first 200 "+FormatDuration(s.FirstHTTP))
	}
	if br := s.Burst; br != nil {
		parts = append(parts, burstCell(br))
	}
	if m := s.Memory; m != nil {
		parts = append(parts, instanceMemoryCell(*m))
	}
	if s.Err != "" {
		parts = append(parts, "failed: "+s.Err)
	}
	parts = append(parts, "teardown "+FormatDuration(s.Teardown))
	if s.TeardownErr != "" {
		parts = append(parts, "teardown failed: "+s.TeardownErr)
	}
	return strings.Join(parts, ", ")
}

// burstCell is a burst's figures in a line.
func burstCell(br *BurstResult) string {
	s := fmt.Sprintf("p50 %s p99 %s, %.0f req/s (%d ok", FormatDuration(br.P50), FormatDuration(br.P99), br.RPS, br.Requests)
	if br.Errors > 0 {
		s += fmt.Sprintf(", %d errors", br.Errors)
	}
	if br.Cut {
		s += ", cut at the deadline"
	}
	return s + ")"
}

// instanceMemoryCell is an instance's memory in a line.
func instanceMemoryCell(m Memory) string {
	s := fmt.Sprintf("PSS %s, RSS %s in %d processes", FormatKiB(m.PSS), FormatKiB(m.RSS), m.Processes)
	if m.Guest > 0 {
		s += fmt.Sprintf(" (VMM overhead %s, guest touched %s)", FormatKiB(m.Overhead), FormatKiB(m.Guest))
	}
	return s
}

// ownNetns is a network namespace of the bench's own, with a tap kt0 at
// 10.0.2.1/24 for a VM at 10.0.2.2: each kiln VM of the HTTP workload
// gets one, so that none changes the host's own network, and all can
// have the same addresses.
type ownNetns struct{ name string }

const (
	nsTapAddr   = "10.0.2.1"
	nsGuestAddr = "10.0.2.2"
)

func newOwnNetns(name string) (*ownNetns, error) {
	n := &ownNetns{name: name}
	_ = runQuiet("ip", "netns", "del", name)
	for _, args := range [][]string{
		{"netns", "add", name},
		{"-n", name, "link", "set", "lo", "up"},
		{"-n", name, "tuntap", "add", "kt0", "mode", "tap"},
		{"-n", name, "addr", "add", nsTapAddr + "/24", "dev", "kt0"},
		{"-n", name, "link", "set", "kt0", "up"},
	} {
		if err := runQuiet("ip", args...); err != nil {
			n.remove()
			return nil, fmt.Errorf("make the network namespace %s: %w", name, err)
		}
	}
	return n, nil
}

// dial connects from inside the namespace.
func (n *ownNetns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialInNetns(ctx, "/run/netns/"+n.name, network, addr)
}

// remove deletes the namespace and checks it is gone.
func (n *ownNetns) remove() error {
	if err := runQuiet("ip", "netns", "del", n.name); err != nil {
		return err
	}
	if _, err := os.Stat("/run/netns/" + n.name); err == nil {
		return fmt.Errorf("the network namespace %s is still there", n.name)
	}
	return nil
}
