package seccomp

import (
	"golang.org/x/sys/unix"

	"github.com/kiln-vmm/kiln/vmm/kvm"
)

// The allow-lists. Every system call kiln makes once its VM runs is here,
// with who makes it. A filter is put together from these lists by
// filter.go: the vCPU filter from goRuntime, sigsysReport and vcpuCalls;
// the process filter from all of them, since it is on the vCPU threads
// too. Lists marked "with ..." are added only when the VM has that device
// or does that thing (Needs).
//
// To find a missing call: KILN_SECCOMP=log kiln run ..., then dmesg
// (doc.go).

// goRuntime is what Go's runtime does on any thread, whatever goroutine
// runs there (runtime/sys_linux_amd64.s has them all; those it makes only
// at start-up are left out).
var goRuntime = []rule{
	call("futex"),          // threads sleep and wake: locks, channels, timers, the scheduler
	call("mmap"),           // the heap and goroutine stacks grow
	call("munmap"),         // memory given back (and guest RAM, unmapped at the end)
	call("madvise"),        // the scavenger returns free pages to the kernel
	call("rt_sigreturn"),   // every signal handler returns through it: preemption is a signal
	call("rt_sigprocmask"), // a thread masks signals while it starts and exits
	call("sigaltstack"),    // each thread's signal stack, set up and torn down
	call("sched_yield"),    // a spinning lock gives way
	call("nanosleep"),      // the runtime's short sleeps (usleep)
	call("clock_gettime"),  // the time, when the vDSO cannot give it
	call("getpid"),         // preempting a goroutine signals its thread: tgkill(getpid(), tid, SIGURG)
	call("gettid"),         // ... and a thread's own id (also sigsysReport's)
	call("tgkill"),         // ... the signal itself (also how kiln wakes a vCPU from KVM_RUN)
	// The network poller: an idle thread waits in it for descriptors and
	// timers (and reads its wake-up eventfd); whichever thread restarts
	// the world after a GC pause, a vCPU's too, polls it once without
	// waiting (and reads nothing).
	call("epoll_pwait"),
	call("write"),      // waking the poller (its eventfd); crash messages to stderr
	call("exit"),       // a thread ends: a vCPU's, when its goroutine returns
	call("exit_group"), // kiln ends (also sigsysReport's)
	// os/signal sets and resets handlers; a crash resets one to die by
	// it. Never SIGSYS's: that handler reports violations (report.go).
	callIf("rt_sigaction", argIsNot(0, uint64(unix.SIGSYS))),
}

// sigsysReport is what the SIGSYS handler does after a refused call, on
// the thread that made it (report.go): gettid and exit_group are above.
var sigsysReport = []rule{
	call("writev"), // the one-line report, to stderr
}

// vcpuCalls is what a vCPU's thread does besides entering the guest: the
// run loop and exit dispatch, and everything the devices do when the
// guest reads or writes their registers (run.go, exits.go). The KVM
// ioctls are vcpuIoctls, on the vCPU's own descriptor.
var vcpuCalls = []rule{
	call("getrandom"), // the guest's init asks for its job, which carries a fresh seed (machine.job)
}

// vcpuIoctls are the KVM requests a vCPU's thread makes on its vCPU.
var vcpuIoctls = []uintptr{
	kvm.IoctlRun,     // entering the guest: the run loop
	kvm.IoctlGetRegs, // where the guest was: error messages, --trace of a halt or a triple fault
	kvm.IoctlGetSregs,
}

// vcpuSnapshotIoctls are how each vCPU saves itself, on its own thread,
// when the VM pauses for a snapshot (cpu.SaveState; KVM_RUN finishes a
// pending exit first).
var vcpuSnapshotIoctls = []uintptr{
	kvm.IoctlGetMPState,
	kvm.IoctlGetXSave,
	kvm.IoctlGetXCRs,
	kvm.IoctlGetDebugRegs,
	kvm.IoctlGetLAPIC,
	kvm.IoctlGetTSCKHz,
	kvm.IoctlGetMSRs,
	kvm.IoctlGetVCPUEvents,
}

// vmIoctls are the requests on the VM's descriptor after setup.
var vmIoctls = []uintptr{
	kvm.IoctlIRQLine, // the serial port's interrupt: a vCPU writing the port, the console's input arriving
}

// vmSnapshotIoctls read the VM's in-kernel devices for a snapshot, on
// kiln's main goroutine once every vCPU has saved itself.
var vmSnapshotIoctls = []uintptr{
	kvm.IoctlGetPIT2,
	kvm.IoctlGetClock,
	kvm.IoctlGetIRQChip,
}

// vcpuWithNet: a vCPU starts a network device when the guest's driver
// writes DRIVER_OK, and tells the tap which offloads the guest took.
var vcpuWithNet = []rule{
	ioctl(unix.TUNSETOFFLOAD), // virtio.Net.Activate
}

// vcpuWithVsock: a vCPU resets the socket device when the guest's driver
// writes 0 to its status, which closes its host connections.
var vcpuWithVsock = []rule{
	call("close"),     // each connection's socket (virtio.Vsock.Reset)
	call("epoll_ctl"), // ... leaves the network poller
}

// process is what the rest of kiln does once the VM runs, on any thread
// but a vCPU's: the main goroutine waiting for the VM and cleaning up
// after it, the console's goroutines, signals, the --report writer, and
// every device goroutine (doc.go says why they share this filter).
var process = []rule{
	// New threads for goroutines, exactly as the runtime makes them
	// (runtime/os_linux.go's cloneFlags): a thread, never a process.
	callIf("clone", argIs(0, cloneFlags)),
	// Each vCPU's thread names itself (kiln-vcpuN, for top -H and the
	// kernel's log) and puts on its own filter, under this one.
	callIf("prctl", argIs(0, unix.PR_SET_NAME)),
	callIf("seccomp", argIs(0, unix.SECCOMP_SET_MODE_FILTER)),
	call("read"),      // stdin for the console; the guest's queue notifications (forwardKicks' eventfds); the poller's wake-up
	call("close"),     // descriptors: device connections, and everything at the end
	call("epoll_ctl"), // descriptors join and leave the network poller
	// The runtime's sysmon thread checks the CPUs it may use about once a
	// second, to follow GOMAXPROCS (Go 1.25): the affinity mask, and a
	// cgroup's CPU limit, read from a descriptor kept open since start-up.
	call("sched_getaffinity"),
	call("pread64"),
}

// cloneFlags are what the runtime passes to clone(2) for a new thread:
// newosproc's CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_SYSVSEM|
// CLONE_THREAD (runtime/os_linux.go), and CLONE_SETTLS, which its clone
// adds for the thread's g (runtime/sys_linux_amd64.s).
const cloneFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD | unix.CLONE_SETTLS

// processWithTerminal: when stdin is a terminal it is in raw mode while
// the guest runs, and put back when the VM ends (console.Terminal).
var processWithTerminal = []rule{
	ioctl(unix.TCGETS),
	ioctl(unix.TCSETS),
}

// processWithContainer: a container's VMM process (kiln as an OCI
// runtime, cmd/kiln/oci/vmm.go) does more than run the VM once it runs:
// it answers kiln start and kill on its control socket, and copies the
// container's stdio between its own descriptors (conmon's pipes, or a
// terminal) and the guest's vsock streams. os.File and net.Conn copies
// may move data with splice(2) or sendfile(2) through a pipe of the
// runtime's own.
var processWithContainer = []rule{
	ioctl(unix.TIOCGWINSZ), // the terminal's size, sent to the guest's
	call("splice"),
	call("sendfile"),
	call("pipe2"),
	call("copy_file_range"),
	call("fstat"),
	call("fcntl"),
}

// processWithSnapshot: kiln snapshot writes the paused VM to a directory
// (machine.SaveSnapshot): a temporary directory beside it, the memory and
// state files, then a rename over the old snapshot, which is removed.
var processWithSnapshot = []rule{
	call("openat"),     // the files (os.OpenFile, os.WriteFile); directories RemoveAll reads
	call("mkdirat"),    // os.MkdirTemp (mode 0700)
	call("pwrite64"),   // guest memory, runs of non-zero pages (memory.WriteFile)
	call("ftruncate"),  // ... and its full size, the zero pages as holes
	call("renameat"),   // into place (os.Rename)
	call("unlinkat"),   // the old snapshot (os.RemoveAll)
	call("getdents64"), // ... its directory listing
	call("newfstatat"), // ... what it holds; the sizes printed at the end
	call("fstat"),      // os.File bookkeeping
	call("lseek"),      // os.RemoveAll rewinds a directory it reads again
	call("fcntl"),      // os.OpenFile looks at a new descriptor's flags
}

// processWithDisks: virtio-blk's queue goroutine (virtio.Block).
var processWithDisks = []rule{
	call("pread64"),   // a read request
	call("pwrite64"),  // a write request
	call("fdatasync"), // a flush
	call("fallocate"), // discard (punch a hole) and write-zeroes
}

// processWithNets: virtio-net's goroutines on a tap (devices/tap).
var processWithNets = []rule{
	call("readv"),  // a frame for the guest, header and data
	call("writev"), // a frame from the guest
	call("ppoll"),  // waiting for a frame, 100 ms at a time, to see a stop
}

// processWithVsock: virtio-vsock's goroutines, which connect guest
// sockets to unix sockets on the host (virtio.Vsock).
var processWithVsock = []rule{
	call("accept4"),                          // a host program connects to PATH
	callIf("socket", argIs(0, unix.AF_UNIX)), // the guest connects to host port P: PATH_P
	call("connect"),
	call("getsockopt"),  // a non-blocking connect's result (SO_ERROR)
	call("getsockname"), // net.Conn's addresses
	call("getpeername"),
	call("shutdown"), // the guest shuts down its sending side
	call("unlinkat"), // the listener removes PATH when it closes
}

// processWithRNG: virtio-rng's queue goroutine.
var processWithRNG = []rule{
	call("getrandom"), // entropy for the guest
}

// processWithShares: the 9P server behind a virtio-9p device, answering
// the guest's requests in goroutines of their own (devices/share). Every
// name is resolved beneath the share's root by openat2 and every file is
// held by an O_PATH descriptor (devices/share/doc.go).
var processWithShares = []rule{
	call("openat2"),    // walk: one name beneath a directory's descriptor
	call("openat"),     // open: an O_PATH descriptor reopened through /proc/self/fd
	call("fstat"),      // getattr, and checks after every open
	call("newfstatat"), // readdir's entries; Tgetattr of a name
	call("fstatfs"),    // statfs
	call("readlinkat"), // readlink
	call("getdents64"), // readdir
	call("lseek"),      // ... resumed at an offset
	call("pread64"),    // read
	call("fcntl"),      // duplicating descriptors (F_DUPFD_CLOEXEC); locks (F_OFD_SETLK, F_OFD_GETLK)
	call("fgetxattr"),  // xattrs
	call("flistxattr"),
}

// processWithWritableShares: the requests that change the host, which a
// read-only share refuses before any system call.
var processWithWritableShares = []rule{
	call("pwrite64"),  // write
	call("fsync"),     // fsync
	call("ftruncate"), // setattr of the size
	call("mkdirat"),   // mkdir
	call("symlinkat"), // symlink
	call("mknodat"),   // mknod: FIFOs, sockets, regular files
	call("linkat"),    // link
	call("renameat"),  // rename
	call("unlinkat"),  // unlink, rmdir
	call("fchownat"),  // a new file's owner (as root); setattr of uid and gid
	call("fchmodat2"), // setattr of the mode, without following a symlink (Linux 6.6)
	call("fchmodat"),  // ... through /proc/self/fd where fchmodat2 is missing
	call("utimensat"), // setattr of the times
	call("fsetxattr"), // xattrs
	call("fremovexattr"),
}
