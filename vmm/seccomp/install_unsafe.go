package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ErrInstall marks a filter the kernel would not take.
var ErrInstall = errors.New("seccomp")

// InstallProcess puts f on every thread of kiln (SECCOMP_FILTER_FLAG_TSYNC),
// and on every thread made from them later: the SIGSYS handler first, then
// no_new_privs, then the filter. It must come before any thread's own
// filter: TSYNC fails when a thread has a filter the caller does not.
func InstallProcess(f *Filter, mode Mode) error {
	// The network poller starts with the first timer or pollable
	// descriptor (epoll_create1, eventfd2): start it now, if nothing has,
	// rather than allow those calls.
	time.AfterFunc(time.Hour, func() {}).Stop()
	return install(f, mode, unix.SECCOMP_FILTER_FLAG_TSYNC)
}

// InstallThread puts f on the calling thread alone, on top of the filters
// it has. The caller has locked its goroutine to the thread
// (runtime.LockOSThread) and must never unlock it: the goroutine's end
// then ends the thread, and with it the filter, which no other goroutine
// may run under.
func InstallThread(f *Filter, mode Mode) error {
	return install(f, mode, 0)
}

func install(f *Filter, mode Mode, flags uintptr) error {
	if mode == Off {
		return nil
	}
	prog, err := f.Program(mode)
	if err != nil {
		return err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("%w: the %s filter: %v", ErrInstall, f.Name, err)
	}
	if err := setHandler(); err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	// SECCOMP_FILTER_FLAG_LOG: the kernel logs each refusal too (audit
	// type=1326), so a violation is in the system's log as well as on
	// kiln's stderr.
	flags |= unix.SECCOMP_FILTER_FLAG_LOG
	r, errno := setFilter(flags, filter)
	if errno == unix.EACCES {
		// Without CAP_SYS_ADMIN a filter needs no_new_privs: no execve
		// can then gain privileges (setuid) the filter was not written
		// for. TSYNC gives every thread the caller's no_new_privs along
		// with its filter, and a new thread inherits it, so a vCPU's
		// thread gets here only in a process with no filter yet.
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("%w: prctl(PR_SET_NO_NEW_PRIVS): %v", ErrInstall, err)
		}
		r, errno = setFilter(flags, filter)
	}
	switch {
	case errno != 0:
		return fmt.Errorf("%w: install the %s filter (%d instructions): %v (--no-seccomp runs without filters)", ErrInstall, f.Name, len(filter), errno)
	case r != 0:
		// TSYNC names the thread it could not give the filter to.
		return fmt.Errorf("%w: install the %s filter: thread %d has a filter of its own", ErrInstall, f.Name, r)
	}
	return nil
}

// setFilter is seccomp(SECCOMP_SET_MODE_FILTER, flags, prog).
func setFilter(flags uintptr, filter []unix.SockFilter) (uintptr, unix.Errno) {
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(filter)
	return r, errno
}

// sigaction is the kernel's struct sigaction on x86-64 (not glibc's).
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const (
	saSiginfo  = 0x4        // SA_SIGINFO: the handler gets siginfo_t and ucontext_t
	saOnstack  = 0x08000000 // SA_ONSTACK: on the thread's signal stack, as Go's own
	saRestorer = 0x04000000 // SA_RESTORER: required on x86-64
)

var handlerErr error
var handlerOnce sync.Once

// setHandler makes sigsys the SIGSYS handler, once, with every signal
// blocked while it runs. Go's own handler would crash with a goroutine
// dump that does not say which call was refused: os/signal cannot pass
// on the siginfo_t that does.
func setHandler() error {
	handlerOnce.Do(func() {
		prepareReport()
		h, r := handlerAddrs()
		sa := sigaction{handler: h, flags: saSiginfo | saOnstack | saRestorer, restorer: r, mask: ^uint64(0)}
		_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGSYS), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
		if errno != 0 {
			handlerErr = fmt.Errorf("%w: set the SIGSYS handler: %v", ErrInstall, errno)
		}
	})
	return handlerErr
}
