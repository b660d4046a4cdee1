package seccomp

import (
	"fmt"
	"sync"
)

// ExitCode is kiln's exit status when a filter refuses a system call:
// 128 + SIGSYS, what a shell shows for a process that SIGSYS killed, which
// is also how kiln ends when the report itself cannot be made.
const ExitCode = 159

// A refused call raises SIGSYS on the thread that made it, and the handler
// sigsys (sigsys_amd64.s) writes one line and ends kiln:
//
//	kiln: seccomp: the vCPU 0 thread 4242 called openat (257), which its filter does not allow
//	kiln: seccomp: the main or device thread 4240 called ioctl (16) with request 0x5401, which its filter does not allow
//
// The handler runs no Go code: the violation may come from inside Go's
// runtime, holding its locks, so nothing that needs the scheduler, the
// allocator or a goroutine can be trusted to run. It only copies from
// the tables below, which prepareReport fills before the handler is
// installed, and formats two numbers. The line is
//
//	reportHeads[filter] + thread id + reportCalls[nr] [+ reportReq + request] + reportTail
//
// written with one writev(2), so two reports never interleave; a second
// thread that is refused while the first reports waits for exit_group.

// numHeads is how many filters the handler can name: the process's and
// one per vCPU (config.MaxCPUs is 64). A vCPU beyond is named as the last.
const numHeads = dataVCPU + 254

// numCalls bounds the system call numbers the handler names (x86-64's
// highest is below 470); reportCalls[numCalls] is for any other.
const numCalls = 512

// The handler's tables and buffers. reportIov holds the iovecs it writes
// (base and length, six at most); the digit buffers hold the numbers it
// formats; reportBusy is taken by the first thread to report.
var (
	reportHeads [numHeads]string
	reportCalls [numCalls + 1]string
	reportReq   = " with request 0x"
	reportTail  = ", which its filter does not allow\n"
	// A SIGSYS that is no refusal, but sent by another process, ends
	// kiln as it would without the handler, with this line.
	reportForeign = "kiln: SIGSYS from another process\n"
	hexDigits     = [16]byte{'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'}

	reportIov  [12]uintptr
	reportTid  [24]byte
	reportHex  [16]byte
	reportBusy uint32
)

// prepareReport fills the handler's tables, once.
var prepareReport = sync.OnceFunc(func() {
	reportHeads[0] = "kiln: seccomp: thread "
	reportHeads[dataProcess] = "kiln: seccomp: the main or device thread "
	for i := dataVCPU; i < numHeads; i++ {
		reportHeads[i] = fmt.Sprintf("kiln: seccomp: the vCPU %d thread ", i-dataVCPU)
	}
	for nr := 0; nr < numCalls; nr++ {
		name, ok := syscallName(nr)
		if !ok {
			name = "system call"
		}
		reportCalls[nr] = fmt.Sprintf(" called %s (%d)", name, nr)
	}
	reportCalls[numCalls] = " called a system call outside the x86-64 table"
})

// The handler and its helpers, in sigsys_amd64.s.
func sigsys()                                   // the SIGSYS handler; only the kernel calls it
func sigreturn()                                // its sa_restorer, never used: sigsys does not return
func handlerAddrs() (handler, restorer uintptr) // their addresses, for rt_sigaction
