#!/usr/bin/env bash
# bench-io.sh measures virtio-blk from inside the guest under kiln and under
# QEMU's microvm machine, with the same kernel, initramfs, kernel command
# line, disk image and guest program (guest/iobench), on the same KVM, in
# one run, alternating the two ROUNDS times. It prints the median of each.
#
# Usage: scripts/bench-io.sh [ROUNDS]   (make bench-io)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
kiln=$repo/bin/kiln
kernel=$repo/bin/vmlinux
initrd=$repo/bin/initramfs.cpio
say() { printf '[bench-io] %s\n' "$*" >&2; }

if ! command -v qemu-system-x86_64 >/dev/null; then
	say "installing qemu-system-x86 from Debian"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null
fi

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
	timeout 600 "$kiln" run --no-rng --memory 128M --disk "$img" -- iobench /dev/vda 32 2>/dev/null
}
run_qemu() {
	timeout 600 qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,acpi=off -enable-kvm -cpu "$cpu" \
		-m 128M -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
		-kernel "$kernel" -initrd "$initrd" -append "$qcmdline" \
		-drive id=d0,file="$img",format=raw,if=none -device virtio-blk-device,drive=d0 2>/dev/null
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
kind=hardware
[ -d /sys/module/kvm_pvm ] && kind="kvm-pvm (software nested KVM)"
printf '\nmedians of %s rounds; host KVM: %s\n' "$rounds" "$kind"
