// Package warm keeps a snapshot of every VM shape kiln has been asked to
// start warm, and starts VMs from it: `kiln run --warm`, and every
// container's VM (all of one shape, so that one snapshot serves them all).
//
// A warm start is a restore (vmm/machine's Restore: guest RAM mapped
// privately from the snapshot, the devices' and vCPUs' state set back)
// of a snapshot taken the first time the shape was asked for: a cold boot
// paused when the guest's init is ready for its job. The cache is keyed
// by the shape (config.Shape: key.go derives the key from every field of
// it, with the files that shape the guest known by identity), the kiln
// build and the host's kind of KVM, so a VM with another kernel,
// initramfs, command line, size or devices, or a kiln of another build,
// gets a snapshot of its own; and a snapshot that is stale or corrupt is
// taken again, never used.
//
// The snapshot is taken by a child process (child.go): a kiln process
// runs one VM under seccomp filters, which go on once the VM is built and
// stay until the process ends, and the restored VM must still be built
// after the snapshot's VM has run. One process at a time takes a given
// snapshot; the others wait for it on a lock beside it (cache.go).
//
//	key.go    the key: a shape, a build and a host, hashed
//	cache.go  the cache directory, its locks, whether a snapshot can be
//	          used, and restore-or-take
//	child.go  taking a snapshot in a `kiln _snapshot` child (vmm/ipc)
package warm
