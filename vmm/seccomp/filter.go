package seccomp

import (
	"fmt"
	"slices"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Mode says whether kiln filters its system calls.
type Mode int

const (
	// Off: no filters (kiln run --no-seccomp, and the machine package's
	// default: a test that builds many VMs in one process).
	Off Mode = iota
	// On: a call outside its thread's list is refused, and kiln ends
	// with one line naming it (report.go).
	On
	// Log: the same filters let every call through, and the kernel logs
	// those outside the lists (KILN_SECCOMP=log; dmesg shows them as
	// audit type=1326 records, with the thread's name). For finding what
	// a new code path needs.
	Log
)

// Needs is what a VM's threads do after setup beyond running it: the
// devices it has and what kiln does when it ends. The filters allow
// these calls only when the VM needs them.
type Needs struct {
	VMFD    int   // the VM's descriptor (kvm.VM.FD)
	VCPUFDs []int // each vCPU's (kvm.VCPU.FD), by index

	Disks, Nets, Vsock, RNG bool
	Shares                  bool // at least one 9P share
	WritableShares          bool // ... and one the guest may change
	Terminal                bool // stdin is a terminal in raw mode
	Snapshot                bool // the VM pauses and kiln writes it to a snapshot
	Container               bool // the VMM of an OCI container (processWithContainer)
}

// Filter is one thread kind's allow-list, ready to assemble and install.
type Filter struct {
	Name  string // "process", "vCPU 0"
	data  uint16 // SECCOMP_RET_DATA of a refusal: which head the report takes
	rules []rule
}

// rule allows one system call, when all of its conditions on the
// arguments hold (none: always).
type rule struct {
	name string
	when []cond
}

// cond is a condition on argument arg (0 to 5) of a system call: that it
// is val, or with ne that it is not.
type cond struct {
	arg uint32
	ne  bool
	val uint64
}

func call(name string) rule { return rule{name: name} }

func callIf(name string, when ...cond) rule { return rule{name: name, when: when} }

func argIs(i uint32, v uint64) cond    { return cond{arg: i, val: v} }
func argIsNot(i uint32, v uint64) cond { return cond{arg: i, ne: true, val: v} }

// ioctl allows one ioctl request, on any descriptor.
func ioctl(req uintptr) rule { return callIf("ioctl", argIs(1, uint64(req))) }

// ioctlOn allows one ioctl request on one descriptor.
func ioctlOn(fd int, req uintptr) rule {
	return callIf("ioctl", argIs(0, uint64(fd)), argIs(1, uint64(req)))
}

// The SECCOMP_RET_DATA of each filter's refusals, which tells the SIGSYS
// handler whose filter refused (report.go): the process's, or vCPU i's as
// dataVCPU+i.
const (
	dataProcess = 1
	dataVCPU    = 2
)

// VCPU is the filter of vCPU id's thread: the Go runtime, the report of
// a refusal, and what the run loop and the devices it drives do. Its KVM
// ioctls are allowed on its own vCPU's descriptor and the VM's alone.
func VCPU(n Needs, id int) *Filter {
	f := &Filter{Name: fmt.Sprintf("vCPU %d", id), data: uint16(dataVCPU + min(id, numHeads-dataVCPU-1))}
	fd := -1
	if id < len(n.VCPUFDs) {
		fd = n.VCPUFDs[id]
	}
	reqs := vcpuIoctls
	if n.Snapshot {
		reqs = append(slices.Clip(reqs), vcpuSnapshotIoctls...)
	}
	for _, r := range reqs {
		f.rules = append(f.rules, ioctlOn(fd, r))
	}
	for _, r := range vmIoctls {
		f.rules = append(f.rules, ioctlOn(n.VMFD, r))
	}
	if n.Nets {
		f.rules = append(f.rules, vcpuWithNet...)
	}
	f.rules = append(f.rules, vcpuCalls...)
	if n.Vsock {
		f.rules = append(f.rules, vcpuWithVsock...)
	}
	f.rules = append(f.rules, goRuntime...)
	f.rules = append(f.rules, sigsysReport...)
	return f
}

// Process is the filter of every thread of kiln: what the main
// goroutine, the device goroutines and the runtime do after setup, and
// what the vCPUs do, since their threads carry this filter under their
// own (a thread's filters all apply, and the strictest answer wins). Its
// KVM ioctls are allowed by request on any descriptor.
func Process(n Needs) *Filter {
	f := &Filter{Name: "process", data: dataProcess}
	reqs := slices.Concat(vcpuIoctls, vmIoctls)
	if n.Snapshot {
		reqs = slices.Concat(reqs, vcpuSnapshotIoctls, vmSnapshotIoctls)
	}
	for _, r := range reqs {
		f.rules = append(f.rules, ioctl(r))
	}
	add := func(on bool, rules []rule) {
		if on {
			f.rules = append(f.rules, rules...)
		}
	}
	add(n.Terminal, processWithTerminal)
	add(n.Nets, vcpuWithNet)
	add(true, vcpuCalls)
	add(true, process)
	add(true, cgoThreads)
	add(true, goRuntime)
	add(true, sigsysReport)
	add(n.Snapshot, processWithSnapshot)
	add(n.Disks, processWithDisks)
	add(n.Nets, processWithNets)
	add(n.Vsock, processWithVsock)
	add(n.RNG, processWithRNG)
	add(n.Shares, processWithShares)
	add(n.WritableShares, processWithWritableShares)
	add(n.Container, processWithContainer)
	return f
}

// Syscalls returns the names of the system calls f allows, sorted.
func (f *Filter) Syscalls() []string {
	var names []string
	for _, r := range f.rules {
		names = append(names, r.name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Program assembles f into a classic BPF program (program.go): allow
// what the lists allow, and refuse the rest with the mode's action:
// SECCOMP_RET_TRAP carrying f's data, or in Log mode SECCOMP_RET_LOG.
func (f *Filter) Program(mode Mode) ([]bpf.Instruction, error) {
	refuse := uint32(unix.SECCOMP_RET_TRAP) | uint32(f.data)
	if mode == Log {
		refuse = unix.SECCOMP_RET_LOG
	}
	prog, err := assemble(f.rules, refuse)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s filter: %v", ErrInstall, f.Name, err)
	}
	return prog, nil
}

// syscallName returns the x86-64 name of system call nr.
func syscallName(nr int) (string, bool) {
	name, ok := arch.X86_64.SyscallNumbers[nr]
	return name, ok
}
