#!/usr/bin/env bash
# deps.sh checks what building and running kiln needs on the host, and
# installs the Debian packages that are missing (as root).
set -euo pipefail

say() { printf '[deps] %s\n' "$*" >&2; }

command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || { say "error: Go is not installed (need Go 1.24 or newer)"; exit 1; }

# The tests make ext4 images (e2fsprogs) and network namespaces with taps
# (iproute2); the guest kernel build installs its own packages.
need=()
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v debugfs >/dev/null || need+=(e2fsprogs)
command -v ip >/dev/null || need+=(iproute2)
# kiln bench (and its test) compares kiln with QEMU's microvm and with
# container runtimes on the same machine; the OCI tests run podman with
# kiln as its runtime (docs/oci.md), and kiln bench times podman and
# containerd with runc and with kiln.
# Without root they are only reported: kiln bench says which rows it skips,
# and the podman tests skip saying podman is missing.
want=()
command -v qemu-system-x86_64 >/dev/null || want+=(qemu-system-x86)
command -v crun >/dev/null || want+=(crun)
command -v runc >/dev/null || want+=(runc)
command -v podman >/dev/null || want+=(podman)
command -v containerd >/dev/null || want+=(containerd)
# The network tests (cmd/kiln/network_test.go): podman's DNS for its
# networks (aardvark-dns, which netavark starts), and the CNI plugins
# that ctr run --cni runs (Debian's, in /usr/lib/cni).
[ -x /usr/lib/podman/aardvark-dns ] || want+=(aardvark-dns)
[ -x /usr/lib/cni/bridge ] || want+=(containernetworking-plugins)
# podman offers container checkpoint and restore only on a host with a
# criu binary (it asks criu its version); kiln's checkpoints are VM
# snapshots and never run it (docs/oci.md, "Checkpoint and restore").
command -v criu >/dev/null || [ -x /usr/sbin/criu ] || want+=(criu)
if [ ${#want[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		need+=("${want[@]}")
	else
		say "warning: kiln bench will skip what ${want[*]} would run; install them as root"
	fi
fi
if [ ${#need[@]} -gt 0 ]; then
	mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
	if [ "$(id -u)" -ne 0 ]; then
		say "error: missing packages ${need[*]}; install them as root"
		exit 1
	fi
	say "installing Debian packages: ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -e /dev/kvm ]; then
	say "warning: /dev/kvm does not exist: kiln can be built, but guests cannot run here"
elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	say "warning: no read/write access to /dev/kvm: add yourself to the kvm group"
fi
