// Package bench is `kiln bench`: it measures how a microVM's start compares
// with a container's, on the same machine and the same workload.
//
// # What is started
//
// The workload (by default `true`) is started six ways, each a Method:
//
//   - kiln: `kiln run` boots the guest kernel and initramfs; the guest's
//     init runs the workload and resets the VM.
//   - qemu-microvm: QEMU's microvm machine with the same vmlinux,
//     initramfs and kernel command line, on the same KVM.
//   - crun and runc: the initramfs unpacked into an OCI bundle, started
//     with `run` (create, start, wait, delete).
//   - unshare+chroot: new namespaces and a chroot into the same root, no
//     runtime.
//   - fork/exec: the workload binary itself, the floor.
//
// # How it is timed
//
// Every start is timed from just before fork to the moment wait returns
// (launch → exit). For VMs also launch → user space: for kiln the moment
// its boot-signal device hears from the guest's init (kiln prints it on
// stderr at once with --boot-time), for QEMU the moment init's marker line
// (kiln.mark=) appears on the serial console. Methods run interleaved, A B
// C A B C ..., so drifts of the machine spread over all of them, after
// warm-up rounds that fill the page cache. Each measure is summarized as
// min, median, 90th percentile (nearest rank) and max.
//
// # How memory is measured
//
// For a VMM the number that matters is its overhead: RSS minus the guest
// memory the guest actually touched, read from /proc/PID/smaps at the
// moment the guest reaches user space (the guest RAM is the one anonymous
// mapping of the guest's size). PSS is reported too. For container
// runtimes the peak RSS (VmHWM) of the runtime process is polled during a
// second, untimed start.
//
// # Density
//
// K kiln VMs are started at once; the report gives the time until all
// reached user space and their total memory.
//
// # The HTTP workload
//
// With Options.Workload "http" (kiln bench --workload http), a service
// is started instead of a command run to its exit: the image's httpd,
// by podman and ctr with runc and with kiln, by kiln run --net and by
// kiln run --restore. Each start is measured from launch to ready as the
// method reports it and to the first HTTP 200 the host gets, then by a
// bounded burst of requests (Burst), the memory of the processes it
// keeps, and its teardown; see http.go.
package bench
