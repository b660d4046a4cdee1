#!/usr/bin/env bash
# test.sh is `make test` after go vet: the packages that boot no guest,
# then the guest tests (cmd/kiln, for 60 minutes at most), each run with
# go test -json. scripts/testreport shows their output live, as go test -v
# would; the streams are kept in bin/test-unit.json and bin/test-guest.json;
# and the run ends with one line per package (tests passed, failed,
# skipped, why each skipped) and the verdict. Both runs always run, so a
# failure in the first hides nothing of the second. It exits nonzero when
# the verdict is FAIL (a test failed, a package did not build, or a guest
# test skipped where /dev/kvm works) or when go test failed.
#
# Environment: GO (default go); UNIT_FLAGS, more go test flags for the
# packages that boot no guest (-race); GUEST_FLAGS, more for cmd/kiln
# (-run TestGuestEcho; -short, where every guest test skips: where
# /dev/kvm works, that FAILS); TESTREPORT (default bin/testreport).
set -uo pipefail

GO=${GO:-go}
cd "$(dirname "$0")/.."
report=${TESTREPORT:-bin/testreport}
read -r -a unit_flags <<<"${UNIT_FLAGS:-}"
read -r -a guest_flags <<<"${GUEST_FLAGS:-}"
mkdir -p bin

# What go test's exit statuses say that the streams may not.
troubles=()

# gotest WHAT STREAM ARGS...: one go test -json run, shown live and kept
# in STREAM.
gotest() {
	local what=$1 stream=$2
	shift 2
	"$GO" test -count=1 -json "$@" | tee "$stream" | "$report" -echo -summary=false
	local codes=("${PIPESTATUS[@]}")
	if [ "${codes[0]}" -ne 0 ]; then
		troubles+=("go test exited ${codes[0]} for $what")
	fi
	if [ "${codes[1]}" -ne 0 ] || [ "${codes[2]}" -ne 0 ]; then
		troubles+=("showing $what failed (tee exited ${codes[1]}, testreport ${codes[2]})")
	fi
}

unit=$("$GO" list ./... | grep -v '/cmd/kiln$') || troubles+=("go list ./... failed")
# shellcheck disable=SC2086 # one package a word
gotest "the packages that boot no guest" bin/test-unit.json "${unit_flags[@]}" $unit
gotest ./cmd/kiln bin/test-guest.json -timeout 80m "${guest_flags[@]}" ./cmd/kiln

# The verdict is the last line, unless go test failed in a way its
# stream does not show (the report then passes).
"$report" bin/test-unit.json bin/test-guest.json || exit
if [ ${#troubles[@]} -gt 0 ]; then
	printf 'make test: %s\n' "${troubles[@]}"
	echo "make test: FAIL, although the streams show no failure: see the output above"
	exit 1
fi
