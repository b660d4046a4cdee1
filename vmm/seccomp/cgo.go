//go:build cgo

package seccomp

// cgoThreads: a cgo build (go build without CGO_ENABLED=0) starts threads
// with glibc's pthread_create, not the runtime's clone. kiln is built
// without cgo (make, and the guest tests, build it so); this list is for
// a cgo build, such as go test's by default. It is weaker: clone3 takes
// its flags in memory, where a filter cannot read them.
var cgoThreads = []rule{
	call("clone3"),          // pthread_create
	call("mprotect"),        // ... the new stack's guard page; malloc arenas
	call("rseq"),            // ... the new thread registers itself
	call("set_robust_list"), // ... and its robust futexes
	call("openat"),          // malloc reads /sys/devices/system/cpu/online when a thread first allocates
	call("read"),
	call("close"),
}
