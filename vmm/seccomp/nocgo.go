//go:build !cgo

package seccomp

// cgoThreads is empty without cgo: the runtime makes threads with clone
// (cgo.go).
var cgoThreads []rule
