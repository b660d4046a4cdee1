// Package hostnet connects a VM to the network a container engine made
// for its container: the host side of a container VM's network.
//
// # What the engine gives a container
//
// A container engine (podman with netavark, containerd with CNI) gives
// each container a network namespace, a separate copy of the kernel's
// network stack with its own interfaces, addresses, routes and
// firewall. In it the engine puts one end of a veth pair, a virtual
// cable whose other end is plugged into a bridge on the host, names it
// eth0 and gives it a MAC address, addresses, routes and an MTU. The
// namespace is a file, /run/netns/NAME or /proc/PID/ns/net, and the OCI
// bundle's config.json names it (linux.namespaces, type "network").
//
// A process in the namespace uses eth0 directly. A VM cannot: its guest
// has a network stack of its own, behind a virtio-net device whose
// frames the VMM reads and writes on a tap (devices/tap). So the VMM
// must carry eth0's frames to the tap and back, and give the guest's
// eth0 what the engine gave the namespace's.
//
// # The TC redirect
//
// Linux's traffic control (tc) runs filters on every frame a device
// receives, at its ingress qdisc. A filter that matches every frame
// (u32 "match u8 0 0") with a mirred action "egress redirect dev X"
// takes the frame away from the device's network stack and sends it out
// of X instead. Two such filters make a wire between eth0 and the tap:
//
//	bridge -> veth -> eth0 ingress --redirect--> tap egress -> the VMM reads it -> guest
//	guest -> the VMM writes it -> tap ingress --redirect--> eth0 egress -> veth -> bridge
//
// The namespace's own stack never sees the frames, and the guest's eth0,
// with eth0's MAC address and addresses (Inspect reads them, and the
// guest's init sets them), is the container on the engine's network:
// nothing changes outside the namespace, no bridge, no NAT. This is
// Kata Containers' "tcfilter" model and firecracker-containerd's
// tc-redirect-tap CNI plugin.
//
// # Entering a namespace
//
// A network namespace belongs to a thread, not to a process: setns(2)
// moves the calling thread only. Go moves goroutines between threads, so
// InNamespace locks a goroutine to its thread (runtime.LockOSThread),
// moves the thread in, does the work and moves it back; if it cannot
// be sure the thread is back, the goroutine ends still locked, and Go
// ends the thread rather than run other goroutines in the wrong
// namespace. Files made there keep their namespace: a tap made in the
// namespace stays there, and its file descriptor works from any thread.
//
// # Leaving nothing behind
//
// The tap is not persistent: it lives as long as its file descriptor,
// so the kernel removes it, with its qdisc and filter, when the VMM
// closes it or dies, even by SIGKILL. What outlives the VMM is the
// filter on eth0 (and the ingress qdisc, if Plumb added it), which then
// redirects to a device that is gone, so eth0 drops what it receives.
// Plumb returns a Plumbing, a small description a state file can keep;
// Teardown, called from any process (kiln delete), removes what the
// Plumbing names and is content if it is gone already.
//
// A VM that must have a network device but needs no network (the boot
// that takes a snapshot, whose restored VMs each bring a tap of their
// own) gets IsolatedTap: a tap in a namespace of its own, which only the
// tap's descriptor holds.
//
// Netlink, the kernel's socket interface for all of this, is spoken
// through github.com/vishvananda/netlink, as runc, the CNI plugins and
// Kata's agent do.
package hostnet
