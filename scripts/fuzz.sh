#!/usr/bin/env bash
# fuzz.sh runs every fuzz target in the repository, one after another, for
# FUZZTIME each, and prints one summary line per target: its name, its
# package, the result and how many inputs it tried. It exits nonzero if any
# target failed; a failing input is written by go test to the package's
# testdata/fuzz/<target>/, where it then runs with every `go test`.
#
#	scripts/fuzz.sh                    every target
#	scripts/fuzz.sh 'Transport|Queue'  targets whose name matches the regexp
#	scripts/fuzz.sh --list             list the targets, fuzz nothing
#
# Targets are found, not listed: every `func FuzzXxx(` in the test files of
# the packages `go list ./...` gives for this host. Packages whose build
# constraints exclude the host (code that only runs in the guest) are not
# listed, so they are skipped; guest code that builds here is fuzzed like
# the rest, as `go test ./...` already runs its tests.
#
# The summary's columns: EXECS, the inputs tried; BASELINE, the corpus the
# target started from (its seeds, testdata/fuzz and what earlier runs kept
# in the Go cache); NEW, the inputs that reached code no earlier input had
# reached (coverage growth, go test's "new interesting").
#
# Environment: FUZZTIME (default 30s), FUZZMINIMIZETIME (passed to
# -fuzzminimizetime when set), FUZZPARALLEL (passed to -parallel when set:
# fuzzing processes per target), GO (default go).
set -uo pipefail

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
filter=${1:-.}
cd "$(dirname "$0")/.."

minimize=()
if [ -n "${FUZZMINIMIZETIME:-}" ]; then
	minimize=(-fuzzminimizetime "$FUZZMINIMIZETIME")
fi
if [ -n "${FUZZPARALLEL:-}" ]; then
	minimize+=(-parallel "$FUZZPARALLEL")
fi

# One line per target: package directory (relative, ./...) and name.
targets=()
while IFS=$'\t' read -r dir files; do
	rel=./${dir#"$PWD"/}
	[ "$dir" = "$PWD" ] && rel=.
	for f in $files; do
		while read -r name; do
			targets+=("$rel $name")
		done < <(sed -n 's/^func \(Fuzz[^a-z(][A-Za-z0-9_]*\|Fuzz\)([A-Za-z_][A-Za-z0-9_]* \*testing\.F).*/\1/p' "$dir/$f")
	done
done < <("$GO" list -f '{{.Dir}}{{"\t"}}{{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./...)

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
if [ "$filter" = --list ]; then
	printf '%s\n' "${targets[@]}"
	exit 0
fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/kiln-fuzz.XXXXXX")
summary=()
failed=0
ran=0
for t in "${targets[@]}"; do
	pkg=${t% *}
	name=${t#* }
	[[ $name =~ $filter ]] || continue
	ran=$((ran + 1))
	log=$logs/$name.log
	printf '[fuzz] %s in %s for %s\n' "$name" "$pkg" "$FUZZTIME" >&2
	"$GO" test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "${minimize[@]}" >"$log" 2>&1
	rc=$?
	# go test -fuzz reports progress as "fuzz: elapsed: 3s, execs: 1234 (...)";
	# the last report has the total.
	execs=$(sed -n 's/.*, execs: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
	# "gathering baseline coverage: 0/N completed" names the start corpus;
	# "new interesting: K (total: T)" counts coverage growth since.
	baseline=$(sed -n 's/.*gathering baseline coverage: [0-9]*\/\([0-9]*\) completed.*/\1/p' "$log" | head -n 1)
	newcov=$(sed -n 's/.*new interesting: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
	result=ok
	if [ $rc -ne 0 ]; then
		result=FAIL
		failed=$((failed + 1))
		# Everything but the progress reports: the failure, the input, how to re-run.
		grep -v '^fuzz: elapsed:' "$log" | head -n 60 >&2
	fi
	summary+=("$(printf '%-22s %-24s %-6s %12s %9s %6s' "$name" "$pkg" "$result" "${execs:--}" "${baseline:--}" "${newcov:--}")")
done

if [ $ran -eq 0 ]; then
	echo "fuzz: no target matches $filter" >&2
	exit 1
fi

echo
printf '%-22s %-24s %-6s %12s %9s %6s\n' TARGET PACKAGE RESULT EXECS BASELINE NEW
printf '%s\n' "${summary[@]}"
echo "logs: $logs"
if [ $failed -ne 0 ]; then
	echo "fuzz: $failed of $ran targets failed" >&2
	exit 1
fi
