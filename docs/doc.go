// Package docs is kiln's documentation: a guided walk through a boot, from
// open("/dev/kvm") to the guest's init, in Markdown files that link to the
// code doing each step (start at README.md).
//
// It holds no code. Its test, run by go test ./..., keeps the walk true to
// the code: every link into the repository must name a file that exists,
// and a link whose text names a Go declaration, as in
//
//	[`machine.New`](../vmm/machine/machine.go)
//	[`Machine.Run`](../vmm/machine/run.go)
//
// must point at the file that declares it: `pkg.Name` for a function,
// type, constant or variable of package pkg, `Type.Method` for a method.
// Links to headings (#anchor) must match a heading of the linked page.
package docs
