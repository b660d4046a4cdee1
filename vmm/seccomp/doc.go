// Package seccomp narrows the system calls kiln may make once its VM is
// built: each kind of thread gets an allow-list, as Firecracker gives its
// vCPU, VMM and API threads theirs, and a call outside its thread's list
// ends kiln with one line naming it.
//
// # Why
//
// The guest is not trusted. Everything it does that leaves the CPU lands
// in kiln: a port or MMIO access runs device code on the vCPU's thread,
// a queue notification wakes a device goroutine that parses descriptor
// chains from guest memory. A bug there that gives the guest control of
// kiln would give it whatever kiln may do on the host: open files, make
// sockets, start programs. After setup kiln needs few system calls; a
// filter makes the kernel refuse the rest, so such a bug gets only those
// (a vCPU's thread: KVM_RUN on its own vCPU, a few more ioctls, and what
// Go's runtime needs).
//
// # seccomp-BPF in one page
//
// A seccomp filter (Documentation/userspace-api/seccomp_filter.rst,
// seccomp(2)) is a classic BPF program the kernel runs at the entry of
// every system call of the threads that carry it. It sees the call as
// struct seccomp_data:
//
//	nr                   the system call's number (x86-64's table)
//	arch                 its ABI: AUDIT_ARCH_X86_64, or i386 for int 0x80
//	instruction_pointer  where it was made
//	args[6]              its arguments, 64 bits each
//
// and returns an action: SECCOMP_RET_ALLOW runs the call;
// SECCOMP_RET_ERRNO fails it with an errno; SECCOMP_RET_TRAP skips it and
// raises SIGSYS on the thread, with the call's number in the siginfo;
// SECCOMP_RET_KILL_PROCESS ends the process; SECCOMP_RET_LOG runs it and
// logs it; SECCOMP_RET_USER_NOTIF hands it to a supervisor process. The
// low 16 bits of the action are data (the errno, or si_errno for TRAP).
//
// Classic BPF is a tiny machine: an accumulator A, an index register X,
// 32-bit loads from seccomp_data, arithmetic, and conditional jumps that
// only go forward, so every program ends; at most 4096 instructions. A
// 64-bit argument is two loads, and a check of ioctl's request is
// "load args[1]'s high half, compare, load its low half, compare"
// (program.go shows a whole program).
//
// The rules that shape kiln's design:
//
//   - A filter cannot be removed or loosened, only added to. A thread
//     may carry several; all of them run, and the most restrictive
//     answer wins (KILL_PROCESS, then KILL_THREAD, TRAP, ERRNO,
//     USER_NOTIF, TRACE, LOG, ALLOW). A thread's own filter on top of
//     the process's can take calls away, never give them back.
//   - A filter belongs to a thread, and threads cloned from it inherit
//     it. SECCOMP_FILTER_FLAG_TSYNC puts one on every thread of the
//     process at once; it fails if a thread has a filter the caller does
//     not, so the process-wide filter goes on first.
//   - Without CAP_SYS_ADMIN, a filter needs no_new_privs (prctl), which
//     TSYNC gives every thread with the filter.
//   - A call that every filter allows whatever its arguments is cached
//     per system call number (Linux 5.11): the program does not even run.
//
// kiln assembles its programs with golang.org/x/net/bpf (program.go), and
// names system calls with github.com/elastic/go-seccomp-bpf's table. That
// library's own assembler is not used: v1.6.0 compares later system call
// numbers with an argument after an argument check fails (A is not
// reloaded), so ioctl(fd, 17) could pass as pread64 (17).
// TestLibraryFallsThrough shows it.
//
// # The filters
//
// Two filters, their lists in lists.go, one comment a call saying who
// makes it:
//
//   - The process filter, on every thread (TSYNC): what Go's runtime
//     does on any thread (futex, mmap, signals, clone for new threads),
//     what the main goroutine does while the VM runs and after it (the
//     console, the terminal's ioctls, signals, the report, writing a
//     snapshot), what every device goroutine does, and everything the
//     vCPUs may do, since their threads carry this filter too.
//   - A vCPU's filter, on that vCPU's thread only, on top: the runtime's
//     calls, and ioctl with KVM_RUN, KVM_GET_REGS and KVM_GET_SREGS on
//     its own vCPU's descriptor and KVM_IRQ_LINE (the serial port's
//     interrupt) on the VM's; to pause for a snapshot, the GET ioctls that
//     save the vCPU; getrandom for the guest's job; TUNSETOFFLOAD when the
//     guest starts a network device; close when it resets the socket
//     device. No file, no socket, no clone, no other vCPU's descriptor,
//     no KVM_SET_anything: setup is over.
//
// Both follow the VM (Needs): the process filter has the 9P server's file
// calls only with a --share, and those that change the host only with a
// writable one; unix sockets only with --vsock; the snapshot's file
// writes only for kiln snapshot. Arguments are checked where one call
// does both harmless and dangerous things: ioctl by request (and, on a
// vCPU, by descriptor); clone only with the exact flags Go's runtime uses
// for a thread, never a new process; socket only AF_UNIX;
// rt_sigaction never for SIGSYS; prctl only PR_SET_NAME; seccomp only to
// add a filter.
//
// # Device workers share the process filter
//
// A worker (virtio.Workers) could lock its goroutine to a thread and put
// a filter of its own on it, as the vCPUs do. kiln does not, because:
//
//   - Devices do not run only in workers: the 9P server answers each
//     request in a goroutine of its own, and its library's session loop
//     runs in another; the queue notifications come through
//     forwardKicks goroutines; the console in two more. Those run
//     wherever Go puts them, under the process filter, which must
//     therefore allow every device's calls anyway.
//   - What a worker filter could take away is little: the process
//     filter already has a device's calls only when the VM has the
//     device, so a block worker's filter would remove the 9P server's
//     calls in a VM that has both, and the console's.
//   - A locked goroutine costs a thread each, and every wake-up of one
//     (each kick of a queue) a hand-off between threads.
//
// So the thread kinds are two: a vCPU's thread, and any other. A refusal
// on the latter names "the main or device thread".
//
// # Go's threads
//
// A goroutine runs on whatever thread the scheduler picks, and moves
// between them; a filter belongs to a thread. A per-thread filter holds
// for a goroutine only while it is locked to its thread
// (runtime.LockOSThread), and must never reach a thread that runs other
// goroutines. So a vCPU's goroutine locks its thread before its filter
// goes on and never unlocks it: when it returns, Go ends the thread
// rather than reuse it (on the main thread, which Go cannot end, it
// parks the thread for good). And a vCPU's thread never makes a thread:
// a locked M that needs a new one asks the template thread, a thread in
// a known-good state that LockOSThread starts the first time (newm,
// templateThread in runtime/proc.go), and that thread has the process
// filter only. A vCPU's filter refuses clone, so were that to change, a
// vCPU would end kiln with a report rather than hand its filter on.
//
// The runtime's own calls (runtime/sys_linux_amd64.s) are in goRuntime;
// those it makes only at start-up are not. Two of its habits matter: the
// network poller (epoll) starts with the first timer or pollable
// descriptor, so InstallProcess starts it, rather than allow
// epoll_create1 and eventfd2; and the thread that restarts the world
// after a garbage collection pause polls the network once, which may be
// a vCPU's. And since Go 1.25 sysmon checks once a second which CPUs it
// may use, to follow GOMAXPROCS (sched_getaffinity, and a cgroup's CPU
// limit read with pread64 from a descriptor opened at start-up): kiln's
// tests in L1 found that with KILN_SECCOMP=log. A cgo build (go build
// without CGO_ENABLED=0; go test's
// default) makes threads with glibc's pthread_create, which needs clone3,
// mprotect and more (cgo.go); kiln itself is built without cgo.
//
// # A refusal, reported
//
// Every refusal is SECCOMP_RET_TRAP with data naming the filter: the
// process's, or vCPU N's. The kernel skips the call and raises SIGSYS on
// the thread that made it, with si_syscall, si_arch and si_errno (the
// data) in its siginfo. kiln's SIGSYS handler (report.go, sigsys_amd64.s)
// writes
//
//	kiln: seccomp: the vCPU 0 thread 4242 called openat (257), which its filter does not allow
//
// (for ioctl, the request too) with one writev, and exits with status
// 159 (ExitCode). It is a few dozen instructions of assembly that use
// no stack and no Go runtime: the refused call may come from inside the
// runtime, holding its locks, so nothing that needs the scheduler or the
// allocator can be trusted to run. The kernel's log has the refusal too
// (SECCOMP_FILTER_FLAG_LOG: an audit record, type=1326).
//
// The alternatives, and why not:
//
//   - SECCOMP_RET_KILL_PROCESS says nothing: kiln would vanish, and the
//     terminal would stay in raw mode.
//   - Go's own SIGSYS handling crashes with a goroutine dump that does
//     not name the call; os/signal cannot pass on the siginfo that does.
//   - SECCOMP_RET_USER_NOTIF, with a goroutine reading the listener
//     (SECCOMP_FILTER_FLAG_NEW_LISTENER): a filter chain may have one
//     listener, on one filter, and among filters with the same answer
//     the newest's decides, so a vCPU's filter could not notify through
//     the process filter's listener; the reading goroutine needs the
//     scheduler, which may never run it if the refused call holds a
//     runtime lock; and once the listener is closed a refused call fails
//     with ENOSYS, and kiln would go on.
//
// A SIGSYS that is no refusal (si_code is not SYS_SECCOMP: kill -SYS
// from another process) ends kiln as Go's handler would, with the line
// "kiln: SIGSYS from another process" instead of a goroutine dump.
//
// When the handler cannot run — SIGSYS is blocked on that thread (Go
// blocks every signal while it makes a thread), or the handler itself
// makes a refused call — the kernel kills kiln with SIGSYS, which a
// shell shows as status 159 too: kiln always ends.
//
// # When
//
// machine.New builds the VM (opens KVM, the disks, the taps, the vsock
// listener, the shares), with no filter; Run puts on the process filter,
// then starts the vCPUs, whose goroutines each put on their own before
// they first enter the guest. machine.Restore builds, and Run filters,
// the same way. A kiln process runs one VM: kiln run --warm takes its
// snapshot in a child kiln snapshot, since a filtered process could not
// build the restored VM afterwards. kiln bench is not filtered (it only
// starts programs); the kilns it starts are. The machine package's
// default is no filter (Options.Seccomp), for tests that build many VMs
// in one process.
//
// # When kiln needs a call its list lacks
//
//	KILN_SECCOMP=log kiln run ...   # the same filters, refusing nothing
//	dmesg | grep type=1326          # each call outside a list: syscall=NR, comm="kiln-vcpu0" or "kiln"
//
// then add the call, with who makes it, to lists.go. kiln run
// --no-seccomp runs without filters (for debugging); -v says when they
// are on and how many calls each allows.
package seccomp
