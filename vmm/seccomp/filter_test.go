package seccomp

import (
	"encoding/binary"
	"testing"

	elastic "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// The filters run here in golang.org/x/net/bpf's virtual machine, on a
// struct seccomp_data made by hand: what the kernel would answer, without
// installing anything.

const (
	vmFD   = 11
	vcpuFD = 12
)

var everything = Needs{VMFD: vmFD, VCPUFDs: []int{vcpuFD, 13}, Disks: true, Nets: true, Vsock: true, RNG: true,
	Shares: true, WritableShares: true, Terminal: true, Snapshot: true}

// decide runs f's program on a call: its number, its ABI and its
// arguments, and returns the action with its data.
func decide(t *testing.T, f *Filter, mode Mode, auditArch uint32, nr int, args ...uint64) uint32 {
	t.Helper()
	prog, err := f.Program(mode)
	require.NoError(t, err)
	return run(t, prog, auditArch, nr, args...)
}

// run runs prog on a call.
func run(t *testing.T, prog []bpf.Instruction, auditArch uint32, nr int, args ...uint64) uint32 {
	t.Helper()
	vm, err := bpf.NewVM(prog)
	require.NoError(t, err)
	// struct seccomp_data: nr, arch, instruction_pointer, args[6]. The
	// kernel loads words in the host's order (little-endian); the VM
	// loads them big-endian, so each 32-bit word is stored that way.
	data := make([]byte, 64)
	be := binary.BigEndian
	be.PutUint32(data[0:], uint32(nr))
	be.PutUint32(data[4:], auditArch)
	for i, a := range args {
		be.PutUint32(data[16+8*i:], uint32(a))       // low half first, as on x86-64
		be.PutUint32(data[16+8*i+4:], uint32(a>>32)) // then the high half
	}
	ret, err := vm.Run(data)
	require.NoError(t, err)
	return uint32(ret)
}

func nr(t *testing.T, name string) int {
	t.Helper()
	n, ok := arch.X86_64.SyscallNames[name]
	require.True(t, ok, name)
	return n
}

const x86_64 = 0xc000003e

func allowed(t *testing.T, f *Filter, name string, args ...uint64) bool {
	t.Helper()
	return decide(t, f, On, x86_64, nr(t, name), args...) == unix.SECCOMP_RET_ALLOW
}

func TestProgramsAssemble(t *testing.T) {
	for _, n := range []Needs{{}, everything, {Shares: true}, {Snapshot: true, VCPUFDs: []int{3}}} {
		for _, f := range []*Filter{Process(n), VCPU(n, 0)} {
			for _, mode := range []Mode{On, Log} {
				prog, err := f.Program(mode)
				require.NoError(t, err, f.Name)
				raw, err := bpf.Assemble(prog)
				require.NoError(t, err, f.Name)
				require.Less(t, len(raw), 4096, "BPF_MAXINSNS")
			}
		}
	}
}

func TestVCPUFilter(t *testing.T) {
	f := VCPU(everything, 0)
	require.True(t, allowed(t, f, "ioctl", vcpuFD, kvm.IoctlRun))
	require.True(t, allowed(t, f, "ioctl", vmFD, kvm.IoctlIRQLine))
	require.True(t, allowed(t, f, "ioctl", vcpuFD, kvm.IoctlGetXSave), "with a snapshot")
	require.False(t, allowed(t, f, "ioctl", 13, kvm.IoctlRun), "another vCPU's descriptor")
	require.False(t, allowed(t, f, "ioctl", vcpuFD, kvm.IoctlIRQLine), "a VM request on the vCPU")
	require.False(t, allowed(t, f, "ioctl", vcpuFD, kvm.IoctlRun|1<<32), "high bits the kernel would drop")
	require.False(t, allowed(t, f, "ioctl", vcpuFD, 0x4090ae82), "KVM_SET_REGS")
	require.True(t, allowed(t, f, "futex"))
	require.True(t, allowed(t, f, "close"), "with vsock")
	for _, name := range []string{"openat", "read", "clone", "clone3", "execve", "socket", "mprotect", "ptrace"} {
		require.False(t, allowed(t, f, name), name)
	}
	require.False(t, allowed(t, VCPU(Needs{VCPUFDs: []int{vcpuFD}}, 0), "ioctl", vcpuFD, kvm.IoctlGetXSave), "without a snapshot")

	// A refusal is SECCOMP_RET_TRAP with the vCPU's data; in log mode,
	// SECCOMP_RET_LOG.
	require.Equal(t, uint32(unix.SECCOMP_RET_TRAP|dataVCPU+1), decide(t, VCPU(everything, 1), On, x86_64, nr(t, "openat")))
	require.Equal(t, uint32(unix.SECCOMP_RET_LOG), decide(t, f, Log, x86_64, nr(t, "openat")))
	// Another ABI's calls are refused whatever their number: int 0x80's
	// (i386), and x32's.
	require.Equal(t, uint32(unix.SECCOMP_RET_TRAP|dataVCPU), decide(t, f, On, 0x40000003, nr(t, "futex")))
	require.Equal(t, uint32(unix.SECCOMP_RET_TRAP|dataVCPU), decide(t, f, On, x86_64, 0x40000000|nr(t, "futex")))
}

func TestProcessFilter(t *testing.T) {
	f := Process(everything)
	require.True(t, allowed(t, f, "clone", cloneFlags))
	require.False(t, allowed(t, f, "clone", uint64(unix.SIGCHLD)), "fork")
	require.False(t, allowed(t, f, "clone", cloneFlags|unix.CLONE_NEWUSER))
	require.True(t, allowed(t, f, "socket", unix.AF_UNIX))
	require.False(t, allowed(t, f, "socket", unix.AF_INET))
	require.True(t, allowed(t, f, "rt_sigaction", uint64(unix.SIGINT)))
	require.False(t, allowed(t, f, "rt_sigaction", uint64(unix.SIGSYS)), "the report's handler stays")
	require.True(t, allowed(t, f, "ioctl", 0, unix.TCSETS))
	require.True(t, allowed(t, f, "ioctl", 99, kvm.IoctlRun))
	require.False(t, allowed(t, f, "ioctl", 99, unix.TIOCSTI))
	for _, name := range []string{"execve", "execveat", "ptrace", "mount", "setns", "unshare", "bpf", "clone3", "init_module", "kexec_load", "open"} {
		require.Equal(t, forCgo(name), allowed(t, f, name), name)
	}
	require.Equal(t, uint32(unix.SECCOMP_RET_TRAP|dataProcess), decide(t, f, On, x86_64, nr(t, "execve")))

	// What the VM has decides the rest.
	bare := Process(Needs{})
	for _, name := range []string{"openat", "openat2", "unlinkat", "socket", "accept4", "pwrite64", "readv", "mkdirat", "fallocate"} {
		require.Equal(t, forCgo(name), allowed(t, bare, name, unix.AF_UNIX), name)
	}
	readOnly := Process(Needs{Shares: true})
	require.True(t, allowed(t, readOnly, "openat2"))
	require.False(t, allowed(t, readOnly, "unlinkat"))
	require.False(t, allowed(t, readOnly, "ioctl", 0, unix.TCSETS), "no terminal")
}

// forCgo reports whether a cgo build allows name for glibc's threads
// (cgo.go).
func forCgo(name string) bool {
	for _, r := range cgoThreads {
		if r.name == name {
			return true
		}
	}
	return false
}

// TestProcessCoversVCPU: a vCPU's thread carries the process filter under
// its own, so everything a vCPU may do the process filter must allow, or
// the strictest answer, the process's refusal, would win.
func TestProcessCoversVCPU(t *testing.T) {
	for _, n := range []Needs{{VCPUFDs: []int{3}}, everything, {Nets: true}, {Vsock: true}, {Snapshot: true}} {
		p := Process(n)
		for id := range max(1, len(n.VCPUFDs)) {
			for _, r := range VCPU(n, id).rules {
				args := make([]uint64, 6)
				for _, c := range r.when {
					args[c.arg] = c.val
					if c.ne {
						args[c.arg]++
					}
				}
				require.True(t, allowed(t, p, r.name, args...), "vCPU %d's %s %v with %+v", id, r.name, args, n)
			}
		}
	}
}

// TestLibraryFallsThrough shows why kiln assembles its programs itself
// (program.go): go-seccomp-bpf v1.6.0's Policy.Assemble compares the
// numbers of the calls after a failed argument check with the argument
// it loaded, so clone(17, ...) passes as pread64 (17). If this fails, a
// newer version has fixed that.
func TestLibraryFallsThrough(t *testing.T) {
	policy := elastic.Policy{DefaultAction: elastic.ActionTrap, Syscalls: []elastic.SyscallGroup{{
		Action: elastic.ActionAllow,
		NamesWithCondtions: []elastic.NameWithConditions{{Name: "clone",
			Conditions: []elastic.Condition{{Argument: 0, Operation: elastic.Equal, Value: cloneFlags}}}},
	}, {
		Action: elastic.ActionAllow,
		Names:  []string{"pread64"},
	}}}
	prog, err := policy.Assemble()
	require.NoError(t, err)
	got := run(t, prog, x86_64, nr(t, "clone"), 17)
	require.Equal(t, uint32(unix.SECCOMP_RET_ALLOW), got, "the library's clone(17) passes as pread64")
	mine := &Filter{Name: "kiln", data: 1, rules: []rule{callIf("clone", argIs(0, cloneFlags)), call("pread64")}}
	require.False(t, allowed(t, mine, "clone", 17))
	require.True(t, allowed(t, mine, "clone", cloneFlags))
	require.True(t, allowed(t, mine, "pread64"))
}

func TestSyscallNames(t *testing.T) {
	require.Contains(t, Process(everything).Syscalls(), "openat2")
	require.NotContains(t, VCPU(everything, 0).Syscalls(), "openat")
	prepareReport()
	require.Equal(t, " called ioctl (16)", reportCalls[16])
	require.Equal(t, " called fchmodat2 (452)", reportCalls[452])
	require.Equal(t, "kiln: seccomp: the vCPU 3 thread ", reportHeads[dataVCPU+3])
}
