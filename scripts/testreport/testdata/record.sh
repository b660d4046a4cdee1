#!/usr/bin/env bash
# record.sh records the go test -json streams testreport's tests read:
# those of the sample packages in sample/ (a module of its own, which the
# kiln module's ./... does not reach), and those of the guest package
# cmd/kiln where no guest boots, with -short and with /dev/kvm hidden
# behind /dev/null in a mount namespace of its own (as root). go test
# exits 1 for most of them: that is what they record.
set -uo pipefail
cd "$(dirname "$0")"
here=$PWD
(
	cd sample
	go test -count=1 -json ./pass ./skips ./fails ./nofiles ./buildfail ./setupfail ./mainfails >"$here/mixed.json"
	go test -count=1 -json ./panics >"$here/panic.json"
	go test -count=1 -json -timeout 2s ./timeout >"$here/timeout.json"
	go test -count=1 -json ./parallel >"$here/parallel.json"
	# Packages at once: timeout's events come before and after the others'.
	go test -count=1 -json -timeout 2s ./timeout ./parallel ./pass ./skips >"$here/interleaved.json"
)
cd ../../..
go test -count=1 -json -short ./cmd/kiln >"$here/kiln-short.json"
unshare -m bash -c 'mount --bind /dev/null /dev/kvm && go test -count=1 -json ./cmd/kiln' >"$here/kiln-nokvm.json"
