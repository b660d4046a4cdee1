package bench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-vmm/kiln/vmm/kvm"
	"golang.org/x/sys/unix"
)

// ParseDensity parses --density's "1,4,16".
func ParseDensity(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, err := strconv.Atoi(f)
		if err != nil || k < 1 || k > 256 {
			return nil, fmt.Errorf("--density wants numbers of VMs from 1 to 256, comma-separated, not %q", f)
		}
		out = append(out, k)
	}
	return out, nil
}

// ThisHost describes this machine for the report.
func ThisHost() Host {
	h := Host{CPUs: runtime.NumCPU(), KVM: "hardware KVM"}
	switch {
	case kvm.IsPVM():
		h.PVM, h.KVM = true, "kvm-pvm (software nested virtualization)"
	case exists("/sys/module/kvm_intel"):
		h.KVM = "hardware KVM (kvm_intel, VMX)"
	case exists("/sys/module/kvm_amd"):
		h.KVM = "hardware KVM (kvm_amd, SVM)"
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		h.MemMiB = uint64(si.Totalram) * uint64(si.Unit) >> 20
	}
	return h
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Check refuses options no run can have: rounds, warm-ups and the timeout
// out of range, a method that does not exist.
func (o *Options) Check() error {
	if o.Rounds < 1 || o.Rounds > 1000 {
		return fmt.Errorf("--rounds must be between 1 and 1000, not %d", o.Rounds)
	}
	if o.Warmup < 0 || o.Warmup > 100 {
		return fmt.Errorf("--warmup must be between 0 and 100, not %d", o.Warmup)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	names := MethodNames
	switch o.Workload {
	case "":
	case "http":
		names = HTTPMethodNames
		b := o.Burst
		if b.Requests < 1 || b.Requests > 1000000 || b.Conns < 1 || b.Conns > 256 || b.Deadline <= 0 {
			return fmt.Errorf("--burst wants 1 to 1000000 requests over 1 to 256 connections")
		}
	default:
		return fmt.Errorf("unknown --workload %q (workloads: boot, http)", o.Workload)
	}
	for _, m := range o.Only {
		if !slices.Contains(names, m) {
			return fmt.Errorf("unknown method %q in --only (methods: %s)", m, strings.Join(names, ", "))
		}
	}
	return nil
}
