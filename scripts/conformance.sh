#!/usr/bin/env bash
# conformance.sh is `make conformance`: the OCI runtime-tools validation
# suite (github.com/opencontainers/runtime-tools v0.9.0) run against
# bin/kiln and against runc, side by side.
#
# 1. The module comes from the Go module proxy (go mod download) into the
#    module cache; a writable copy goes to CACHE/src (outside the repo).
#    v0.9.0 predates modules: the copy gets a go.mod naming the versions
#    its Godeps pinned (or the nearest tagged ones).
# 2. The waits this host needs are lengthened in that copy, and said so:
#    a container VM's process costs seconds of emulated kernel work here
#    (docs/oci.md), so a 10 s wait for a container to stop becomes 240 s
#    and a 5 s wait 60 s.
# 3. runtimetest and every validation program (validation/*/) are built
#    into CACHE/bin; the busybox root file system the suite untars for
#    each bundle (rootfs-amd64.tar.gz) ships in the module's zip.
# 4. Each program runs with RUNTIME=bin/kiln (under the shared guest lock,
#    /tmp/kiln-guest.lock: it boots many guests) and RUNTIME=runc, its TAP
#    output kept in OUT/RUNTIME/PROGRAM.tap. The end is a table of both
#    counts and the list of kiln's failures.
#
# Needs root (the suite creates containers) and runc on PATH.
# Environment: CACHE (default $KILN_CACHE/conformance, ~/.cache/kiln/...),
# OUT (default bin/conformance), TESTS (space-separated program names,
# default all), RUNTIMES (default "kiln runc"), PROGRAM_TIMEOUT (seconds
# one program may take, default 3600), KILN (default bin/kiln).
set -uo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
version=v0.9.0
module=github.com/opencontainers/runtime-tools
cache=${CACHE:-${KILN_CACHE:-$HOME/.cache/kiln}/conformance}
out=${OUT:-$repo/bin/conformance}
kiln=${KILN:-$repo/bin/kiln}
runtimes=${RUNTIMES:-kiln runc}
timeout_s=${PROGRAM_TIMEOUT:-3600}
lock=/tmp/kiln-guest.lock

die() { echo "conformance: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root: the suite creates containers"
[ -x "$kiln" ] || die "no $kiln: run make all first"
command -v runc >/dev/null || [[ " $runtimes " != *" runc "* ]] || die "runc is not on PATH (apt-get install runc), or set RUNTIMES=kiln"

# 1. The module, and a go.mod for it.
src=$cache/src-$version
if [ ! -f "$src/.built" ]; then
	dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$dir" ] || die "go mod download $module@$version failed"
	rm -rf "$src" && mkdir -p "$cache" && cp -r "$dir" "$src" && chmod -R u+w "$src"
	cd "$src" || die "cd $src"
	cat >go.mod <<EOF
module $module

go 1.21
EOF
	# The Godeps' versions, where a tag is near them.
	go get github.com/opencontainers/runtime-spec@v1.0.2 \
		github.com/opencontainers/selinux@v1.2.2 \
		github.com/urfave/cli@v1.22.1 \
		github.com/satori/go.uuid@v1.2.0 \
		github.com/hashicorp/go-multierror@v1.0.0 \
		github.com/mndrix/tap-go@v0.0.0-20171203230836-629fa407e90b \
		github.com/sirupsen/logrus@v1.0.6 \
		github.com/blang/semver@v3.5.0+incompatible >/dev/null || die "go get the suite's dependencies"
	go mod tidy >/dev/null 2>&1 || die "go mod tidy in $src"

	# 2. The waits, lengthened in this copy only.
	echo "conformance: lengthening the suite's waits for this host (in $src only):"
	grep -rln --include=*.go -e 'time.Second\*10' -e '10\*time.Second' -e 'time.Second\*5' validation | while read -r f; do
		sed -i -e 's/time\.Second\*10\b/time.Second*240/g' -e 's/\b10\*time\.Second/240*time.Second/g' \
			-e 's/time\.Second\*5\b/time.Second*60/g' "$f"
		echo "  $f"
	done
	echo "  (10 s -> 240 s, 5 s -> 60 s)"

	# 3. The programs.
	mkdir -p "$cache/bin"
	CGO_ENABLED=0 go build -o "$cache/bin/runtimetest" ./cmd/runtimetest || die "build runtimetest"
	for d in validation/*/; do
		name=$(basename "$d")
		[ "$name" = util ] && continue
		go build -o "$cache/bin/$name" "./$d" || die "build $d"
	done
	cp rootfs-amd64.tar.gz "$cache/bin/" || die "the module's zip has no rootfs-amd64.tar.gz"
	touch .built
	cd "$repo" || exit 1
else
	echo "conformance: the suite is built in $cache/bin (the waits lengthened: 10 s -> 240 s, 5 s -> 60 s; rm $src/.built to rebuild)"
fi

tests=${TESTS:-$(cd "$cache/bin" && ls | grep -v -e '^runtimetest$' -e '\.tar\.gz$' | tr '\n' ' ')}

# 4. Every program against each runtime. A program runs in a directory
#    holding runtimetest and the root file system, as the suite expects.
run_one() { # RUNTIME_NAME RUNTIME_PATH PROGRAM
	local work=$out/$1/work
	mkdir -p "$work" && cp "$cache/bin/runtimetest" "$cache/bin/rootfs-amd64.tar.gz" "$work/"
	(cd "$work" && RUNTIME=$2 timeout -k 30 "$timeout_s" "$cache/bin/$3" >"$out/$1/$3.tap" 2>"$out/$1/$3.err")
	echo $? >"$out/$1/$3.rc"
}

# kiln, with the guest kernel and initramfs beside it where it finds
# them, is copied first: a rebuild during the run does not mix binaries.
if [[ " $runtimes " == *" kiln "* ]]; then
	mkdir -p "$out/kiln-bin"
	cp "$kiln" "$out/kiln-bin/kiln" || die "copy $kiln"
	for f in vmlinux initramfs.cpio; do
		cp -L "$(dirname "$kiln")/$f" "$out/kiln-bin/$f" || die "copy $f beside kiln"
	done
	echo "conformance: kiln is $out/kiln-bin/kiln, a copy of $kiln ($(cd "$repo" && git describe --always --dirty 2>/dev/null))"
fi

for rt in $runtimes; do
	mkdir -p "$out/$rt"
	case $rt in
	kiln) path=$out/kiln-bin/kiln ;;
	runc) path=$(command -v runc) ;;
	*) die "unknown runtime $rt (kiln, runc)" ;;
	esac
	for t in $tests; do
		[ -x "$cache/bin/$t" ] || die "no validation program $t"
		echo "conformance: $rt: $t ($(date -u +%H:%M:%S))"
		if [ "$rt" = kiln ]; then
			export -f run_one
			export out cache timeout_s
			flock "$lock" bash -c 'run_one "$@"' _ "$rt" "$path" "$t"
		else
			run_one "$rt" "$path" "$t"
		fi
	done
done

# count RUNTIME: passed, failed, and programs that ended without a plan.
count() {
	local pass=0 fail=0 broken=0 t
	for t in $tests; do
		f=$out/$1/$t.tap
		[ -f "$f" ] || continue
		pass=$((pass + $(grep -c '^ok ' "$f")))
		fail=$((fail + $(grep -c '^not ok ' "$f")))
		grep -q '^1\.\.[0-9]' "$f" || broken=$((broken + 1))
	done
	echo "$pass $fail $broken"
}

echo
printf '%-8s %8s %8s %s\n' runtime passed failed "programs with no TAP plan"
for rt in $runtimes; do
	read -r p f b < <(count "$rt")
	printf '%-8s %8s %8s %s\n' "$rt" "$p" "$f" "$b"
done
if [[ " $runtimes " == *" kiln "* ]]; then
	echo
	echo "kiln's failures:"
	for t in $tests; do
		f=$out/kiln/$t.tap
		[ -f "$f" ] || continue
		grep '^not ok ' "$f" | sed "s|^|  $t: |"
		grep -q '^1\.\.[0-9]' "$f" || echo "  $t: no TAP plan (exit $(cat "$out/kiln/$t.rc")): $(tail -n 1 "$out/kiln/$t.err")"
	done
fi
echo "(TAP output: $out/RUNTIME/PROGRAM.tap)"
