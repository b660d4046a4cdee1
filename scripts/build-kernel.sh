#!/usr/bin/env bash
# build-kernel.sh builds kiln's guest kernel: an uncompressed vmlinux with a
# PVH entry point, from Debian's linux-source-6.1, configured by
# guest/kernel/kiln.config on top of allnoconfig and patched by
# guest/kernel/patches/*.patch.
#
# The result is cached outside the repository, keyed by the config, the
# patches, this script and the source package version, so a second run is
# instant. Usage: scripts/build-kernel.sh OUTPUT   (default bin/vmlinux)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/bin/vmlinux}
cache=${KILN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}
tarball=/usr/src/linux-source-6.1.tar.xz

say() { printf '[kernel] %s\n' "$*" >&2; }

# 1. The source package and the tools a kernel build needs.
need=()
[ -f "$tarball" ] || need+=(linux-source-6.1)
for tool in gcc:build-essential make:build-essential bc:bc bison:bison flex:flex xz:xz-utils; do
	command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
[ -f /usr/include/libelf.h ] || need+=(libelf-dev)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
	say "installing Debian packages: ${need[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		say "error: need root to install ${need[*]} (or install them yourself)"
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || echo unknown)
key=$( (echo "$version"; cat "$repo/guest/kernel/kiln.config" "$repo"/guest/kernel/patches/*.patch "$0") | sha256sum | cut -c1-16)
dir=$cache/kernel-$key
mkdir -p "$(dirname "$out")"

# 2. A cached build with the same inputs is the answer.
if [ -f "$dir/vmlinux" ]; then
	say "cached: $dir/vmlinux"
	cp "$dir/vmlinux" "$out"
	exit 0
fi

# 3. Unpack and patch a fresh tree.
say "building Linux $version for kiln (key $key); takes about 10 minutes on 2 cores"
rm -rf "$dir" && mkdir -p "$dir"
say "unpacking $tarball"
tar -C "$dir" -xf "$tarball"
src=$dir/linux-source-6.1
for p in "$repo"/guest/kernel/patches/*.patch; do
	say "patch $(basename "$p")"
	patch -s -p1 -d "$src" <"$p"
done

# 4. Configure: allnoconfig plus our fragment, then check every line took.
say "configure: allnoconfig + guest/kernel/kiln.config"
make -s -C "$src" KCONFIG_ALLCONFIG="$repo/guest/kernel/kiln.config" allnoconfig
missing=0
while read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qx "$line" "$src/.config" || { say "warning: $line did not take"; missing=1; } ;;
	"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}; ! grep -q "^$sym=[ym]" "$src/.config" || { say "warning: $sym is still on"; missing=1; } ;;
	esac
done <"$repo/guest/kernel/kiln.config"
[ $missing -eq 0 ] || say "(some options depend on others; see $src/.config)"

# 5. Build vmlinux, printing progress every 200 objects.
jobs=$(nproc)
say "make -j$jobs vmlinux (log: $dir/build.log)"
start=$(date +%s)
set +e
make -C "$src" -j"$jobs" vmlinux 2>&1 | tee "$dir/build.log" | awk '
	/^  CC / { n++; if (n % 200 == 0) { printf "[kernel] %d files compiled (%s)\n", n, $2; fflush() } }
	/error:/ { print; fflush() }' >&2
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
	say "error: kernel build failed; last lines of $dir/build.log:"
	tail -20 "$dir/build.log" >&2
	exit 1
fi
cp "$src/vmlinux" "$dir/vmlinux.tmp" && mv "$dir/vmlinux.tmp" "$dir/vmlinux"
cp "$src/.config" "$dir/config"
# The tree is large; keep only what is needed.
rm -rf "$src"
say "built in $(($(date +%s) - start)) s: $dir/vmlinux"
cp "$dir/vmlinux" "$out"
