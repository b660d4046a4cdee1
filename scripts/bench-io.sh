#!/usr/bin/env bash
# bench-io.sh measures storage from inside the guest under kiln and under
# QEMU's microvm machine, with the same kernel, initramfs, kernel command
# line, disk image and guest program (guest/iobench), on the same KVM, in
# one run, alternating them ROUNDS times. It prints the median of each.
#
# Two tables: the raw virtio-blk device (O_DIRECT throughput and random
# IOPS), then file systems: a host directory shared over virtio-9p (kiln's
# --share, QEMU's -virtfs with the same tag and mount options) against ext4
# on a virtio disk, each with a file written, fsynced and read back and a
# metadata job (create, stat and remove FILES files, default 2000).
#
# Usage: scripts/bench-io.sh [ROUNDS]   (make bench-io)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
files=${FILES:-2000}
# The longest one VM may take. QEMU's microvm has no i8042, so a guest's
# reboot=k spins until its fallbacks give up (20 s on kvm-pvm): its line is
# printed long before, and a timeout still yields it.
limit=${VM_TIMEOUT:-1800}
kiln=$repo/bin/kiln
kernel=$repo/bin/vmlinux
initrd=$repo/bin/initramfs.cpio
say() { printf '[bench-io] %s\n' "$*" >&2; }

if ! command -v qemu-system-x86_64 >/dev/null; then
	say "installing qemu-system-x86 from Debian"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null
fi
command -v mkfs.ext4 >/dev/null || { say "error: mkfs.ext4 is missing (e2fsprogs)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
img=$work/disk.img
truncate -s 64M "$img"

# The same kernel command line for both: kiln's, without its own virtio
# windows (QEMU's microvm announces its devices itself).
cmdline=$("$kiln" run --print-cmdline --no-rng --disk "$img" -- iobench /dev/vda 32)
qcmdline=$(tr ' ' '\n' <<<"$cmdline" | grep -v '^virtio_mmio.device=' | tr '\n' ' ')

# On a PVM host QEMU's guest needs what kiln gives its guest (docs/pvm.md).
cpu=host
if [ -d /sys/module/kvm_pvm ]; then
	cpu=host,-cx16,-xsave,-arch-capabilities,kvm-pv-unhalt=off,kvm-pv-ipi=off,kvm-pv-sched-yield=off,kvm-asyncpf=off,kvm-asyncpf-int=off
fi

run_kiln() {
	timeout "$limit" "$kiln" run --no-rng --memory 128M --disk "$img" -- iobench /dev/vda 32 2>/dev/null
}
run_qemu() {
	timeout "$limit" qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,acpi=off -enable-kvm -cpu "$cpu" \
		-m 128M -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
		-kernel "$kernel" -initrd "$initrd" -append "$qcmdline" \
		-drive id=d0,file="$img",format=raw,if=none -device virtio-blk-device,drive=d0 2>/dev/null
}

# The file-system runs: a share (a fresh host directory each run), and an
# ext4 image.
fsimg=$work/ext4.img
share=$work/share
fscmd="iobench -fs /mnt/fs 32 $files"
extcmd="mkdir -p /mnt/fs && mount -t ext4 /dev/vda /mnt/fs && $fscmd"
fs_cmdline=$(mkdir -p "$share" && "$kiln" run --print-cmdline --no-rng --share "$share:/mnt/fs" -- sh -c "$fscmd")
fs_qcmdline=$(tr ' ' '\n' <<<"$fs_cmdline" | grep -v '^virtio_mmio.device=' | tr '\n' ' ')
ext_cmdline=$(truncate -s 256M "$fsimg" && "$kiln" run --print-cmdline --no-rng --disk "$fsimg" -- sh -c "$extcmd")
ext_qcmdline=$(tr ' ' '\n' <<<"$ext_cmdline" | grep -v '^virtio_mmio.device=' | tr '\n' ' ')

fresh_share() { rm -rf "$share" && mkdir -p "$share"; }
fresh_ext4() { rm -f "$fsimg" && truncate -s 256M "$fsimg" && mkfs.ext4 -q -F "$fsimg"; }
qemu_common() {
	timeout "$limit" qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,acpi=off -enable-kvm -cpu "$cpu" \
		-m 128M -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
		-kernel "$kernel" -initrd "$initrd" "$@" 2>/dev/null
}
run_kiln_9p() { fresh_share && timeout "$limit" "$kiln" run --no-rng --memory 128M --share "$share:/mnt/fs" -- sh -c "$fscmd" 2>/dev/null; }
run_qemu_9p() {
	fresh_share && qemu_common -append "$fs_qcmdline" \
		-fsdev local,id=fs0,path="$share",security_model=passthrough -device virtio-9p-device,fsdev=fs0,mount_tag=kiln0
}
run_kiln_ext4() { fresh_ext4 && timeout "$limit" "$kiln" run --no-rng --memory 128M --disk "$fsimg" -- sh -c "$extcmd" 2>/dev/null; }
run_qemu_ext4() {
	fresh_ext4 && qemu_common -append "$ext_qcmdline" \
		-drive id=d0,file="$fsimg",format=raw,if=none -device virtio-blk-device,drive=d0
}

declare -A samples
for r in $(seq 1 "$rounds"); do
	for vmm in kiln qemu; do
		say "round $r/$rounds: $vmm"
		line=$("run_$vmm" | tr -d '\r' | grep '^iobench ' || true)
		if [ -z "$line" ]; then
			say "$vmm printed no result in round $r"
			continue
		fi
		say "  $line"
		samples[$vmm]+="${line#iobench } "$'\n'
	done
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
printf '\n%-6s %18s %18s %20s\n' vmm "seq write MiB/s" "seq read MiB/s" "rand read 4K IOPS"
for vmm in kiln qemu; do
	s=${samples[$vmm]:-}
	w=$(grep -o 'seq_write_mib_s=[0-9.]*' <<<"$s" | cut -d= -f2 | median)
	rd=$(grep -o 'seq_read_mib_s=[0-9.]*' <<<"$s" | cut -d= -f2 | median)
	io=$(grep -o 'rand_read_4k_iops=[0-9.]*' <<<"$s" | cut -d= -f2 | median)
	printf '%-6s %18s %18s %20s\n' "$vmm" "$w" "$rd" "$io"
done

declare -A fs
for r in $(seq 1 "$rounds"); do
	for m in kiln_9p qemu_9p kiln_ext4 qemu_ext4; do
		say "round $r/$rounds: $m"
		line=$("run_$m" | tr -d '\r' | grep '^iobench ' || true)
		if [ -z "$line" ]; then
			say "$m printed no result in round $r"
			continue
		fi
		say "  $line"
		fs[$m]+="${line#iobench } "$'\n'
	done
done
printf '\n%-10s %16s %16s %22s\n' "file system" "write MiB/s" "read MiB/s" "create+stat+rm files/s"
for m in kiln_9p qemu_9p kiln_ext4 qemu_ext4; do
	s=${fs[$m]:-}
	w=$(grep -o 'fs_write_mib_s=[0-9.]*' <<<"$s" | cut -d= -f2 | median)
	rd=$(grep -o 'fs_read_mib_s=[0-9.]*' <<<"$s" | cut -d= -f2 | median)
	mt=$(grep -o 'meta_files_s=[0-9.]*' <<<"$s" | cut -d= -f2 | median)
	printf '%-10s %16s %16s %22s\n' "$m" "$w" "$rd" "$mt"
done

kind=hardware
[ -d /sys/module/kvm_pvm ] && kind="kvm-pvm (software nested KVM)"
printf '\nmedians of %s rounds, %s files in the metadata job; host KVM: %s\n' "$rounds" "$files" "$kind"
