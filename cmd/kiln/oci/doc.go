// Package oci makes kiln an OCI runtime: the program that container
// engines such as podman (through conmon) and containerd (through its
// runc shim) call to run a container, as they call runc.
//
// The Open Container Initiative's runtime specification
// (github.com/opencontainers/runtime-spec) defines two things a runtime
// works with. A bundle is a directory with config.json: the process to
// run (arguments, environment, user, working directory, limits, whether
// it has a terminal), its root file system (a directory the engine has
// already assembled from the image's layers), the mounts to make inside
// it, and the Linux isolation to set up (namespaces, cgroups, seccomp,
// capabilities). The state is what the runtime reports about a container:
// its ID, its status (creating, created, running, stopped) and the host
// process that is the container. The operations are create, start, state,
// kill and delete; runc's command line for them (`runc create --bundle DIR
// --pid-file F ID`, ...) is what the engines really call, with runc's exit
// codes, and is what kiln implements (docs/oci.md has the calls podman and
// containerd make).
//
// runc turns a bundle into namespaces and a cgroup around a host process.
// kiln turns it into a microVM: one VM per container, whose guest kernel
// and init are kiln's own, and whose only workload is the container's
// process. This package does the parts that need no KVM:
//
//	bundle.go     read a bundle's config.json and find its root file system
//	translate.go  config.json -> the VM's shares and the guest's job
//	              (guest/contract's Container); what is refused, what ignored
//	shape.go      the one VM shape every container gets, so that one warm
//	              snapshot serves them all
//	network.go    the engine's network namespace: its interface, read by
//	              create, taken over by the VMM's tap, undone by delete
//	state.go      the state directory: one per container under the root
//	              (/run/kiln), state.json, locking, the status
//	proc.go       is a host process still the one we started
//	signal.go     signal names and numbers as engines pass them
//	console.go    the pseudo-terminal for a container with a terminal, its
//	              master handed to the engine over --console-socket
//	link.go       the host side of the guest's control and stdio streams
//	process.go    the container's process as the VMM knows it: when a
//	              signal is held, delivered, ends the container or refused
//	vmmctl.go     the VMM's own control socket, for kiln start and kill
//	log.go        error lines in --log, JSON as runc writes them
//	pidfile.go    the pid file: bare digits, written atomically
//	features.go   what kiln features prints
//
// cmd/kiln has the command line and the VMM process itself.
package oci
