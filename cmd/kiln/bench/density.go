package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"
)

// density starts k kiln VMs at the same moment and measures how long until
// every one reported user space, and their memory at that point: how many
// microVMs a host holds, and how boots slow down as they share its CPUs.
// Each guest then idles in `sleep` until all are up and is stopped. With
// snapshot set, the VMs are restored from it instead of booted: they share
// the snapshot's memory file in the host's page cache, which their PSS
// shows.
func (b *bench) density(ctx context.Context, k int, snapshot string) Density {
	d := Density{VMs: k, Restored: snapshot != ""}
	args := append([]string{b.opt.Kiln, "run"}, reportArgs...)
	if snapshot != "" {
		args = append(args, "--restore", snapshot, "--", "sleep", "3600")
	} else {
		args = append(args, "--kernel", b.opt.Kernel, "--initrd", b.opt.Initrd,
			"--memory", fmt.Sprintf("%dM", b.opt.Memory>>20), "--", "sleep", "3600")
	}
	// Booting k guests on the host's CPUs takes about k/CPUs times as long.
	cpus := max(b.opt.Host.CPUs, 1)
	timeout := b.opt.Timeout * time.Duration((k+cpus-1)/cpus+1)

	var (
		mu    sync.Mutex
		up    sync.WaitGroup
		pids  []int
		each  = make([]time.Duration, k)
		errs  []string
		start = time.Now()
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var exited sync.WaitGroup
	up.Add(k)
	for i := 0; i < k; i++ {
		exited.Add(1)
		go func(i int) {
			defer exited.Done()
			var once sync.Once
			reached := func() { once.Do(up.Done) }
			l := launch{argv: args, report: true, timeout: timeout,
				onMark: func(pid int) {
					mu.Lock()
					each[i] = time.Since(start)
					pids = append(pids, pid)
					mu.Unlock()
					reached()
				}}
			o, err := l.run(ctx)
			if !o.marked {
				mu.Lock()
				msg := "the guest never reported user space" + o.tail()
				if err != nil {
					msg = err.Error()
				}
				errs = append(errs, msg)
				mu.Unlock()
				reached()
			}
		}(i)
	}
	up.Wait()
	d.AllUserspace = time.Since(start)
	mu.Lock()
	for _, pid := range pids {
		m, err := readVMMMemory(pid, b.opt.Memory>>10)
		if err != nil {
			errs = append(errs, "memory: "+err.Error())
			continue
		}
		d.TotalRSS += m.RSS
		d.TotalPSS += m.PSS
		d.TotalOverhead += m.Overhead
	}
	// Stop the VMs: kiln ends a VM on SIGTERM.
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	mu.Unlock()
	waited := make(chan struct{})
	go func() { exited.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		cancel()
		<-waited
	}
	for _, e := range each {
		if e > 0 {
			d.Each = append(d.Each, e)
		}
	}
	if len(errs) > 0 {
		d.Err = fmt.Sprintf("%d of %d VMs: %s", len(errs), k, strings.Join(errs, "; "))
	}
	return d
}

func describeDensity(d Density) string {
	if d.Method != "" {
		how := "all answered 200 after"
		if d.Err != "" {
			how = "not all answered 200, gave up after"
		}
		s := fmt.Sprintf("%d × %s: %s %s; total PSS %s, RSS %s",
			d.VMs, d.Method, how, FormatDuration(d.AllServing), FormatKiB(d.TotalPSS), FormatKiB(d.TotalRSS))
		if d.TotalOverhead > 0 {
			s += ", VMM overhead " + FormatKiB(d.TotalOverhead)
		}
		if d.PerSecond > 0 {
			s += fmt.Sprintf("; %.1f restored and serving per second (%.1f per host core)", d.PerSecond, d.PerCoreSecond)
		}
		if d.Err != "" {
			s += "; failed: " + d.Err
		}
		return s
	}
	vms := "VMs"
	if d.VMs == 1 {
		vms = "VM"
	}
	how := "booted"
	if d.Restored {
		how = "restored"
	}
	s := fmt.Sprintf("%d %s %s: all in user space after %s; total RSS %s, PSS %s, VMM overhead %s",
		d.VMs, vms, how, FormatDuration(d.AllUserspace), FormatKiB(d.TotalRSS), FormatKiB(d.TotalPSS), FormatKiB(d.TotalOverhead))
	if d.Err != "" {
		s += "; failed: " + d.Err
	}
	return s
}
