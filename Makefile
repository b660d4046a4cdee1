# kiln: `make run` boots a guest, `make test` runs every test.
#
# Build outputs go to bin/; the guest kernel build is cached outside the
# repository (KILN_CACHE, default ~/.cache/kiln) keyed by its config and
# patches, so only the first `make` on a machine takes minutes.

GO ?= go
export KILN_CACHE ?= $(HOME)/.cache/kiln

GO_SRC := $(shell find cmd vmm devices boot guest/contract -name '*.go' -not -name '*_test.go') go.mod go.sum
GUEST_SRC := $(shell find guest -name '*.go' -not -name '*_test.go' -o -name '*.s') go.mod go.sum

.PHONY: all kiln kernel initramfs run test unit fuzz vet clean deps bench bench-io soak conformance

all: bin/kiln bin/vmlinux bin/initramfs.cpio

kiln: bin/kiln
kernel: bin/vmlinux
initramfs: bin/initramfs.cpio

deps:
	@scripts/deps.sh

bin/kiln: $(GO_SRC) | deps
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/kiln

bin/vmlinux: guest/kernel/kiln.config $(wildcard guest/kernel/patches/*.patch) scripts/build-kernel.sh | deps
	scripts/build-kernel.sh $@

bin/initramfs.cpio: $(GUEST_SRC) | deps
	$(GO) run ./guest/mkinitramfs -o $@

# Boot a guest with the u-root shell on this terminal (Ctrl-A X quits).
run: all
	bin/kiln run

# Unit tests, fuzz seeds, and the tests that boot real guests under KVM:
# go vet, then the packages that boot no guest, then the guest tests
# (cmd/kiln), each shown live as go test -v shows it and kept as JSON in
# bin/test-unit.json and bin/test-guest.json. It ends with one line per
# package and a verdict, and fails when a test failed or, where /dev/kvm
# works, a guest test skipped (scripts/test.sh, scripts/testreport).
# UNIT_FLAGS: more go test flags for the packages that boot no guest
# (-race); GUEST_FLAGS: more for cmd/kiln (-run REGEXP).
UNIT_FLAGS ?= -race -cover
GUEST_FLAGS ?=
test: all bin/testreport
	$(GO) vet ./...
	GO=$(GO) UNIT_FLAGS='$(UNIT_FLAGS)' GUEST_FLAGS='$(GUEST_FLAGS)' scripts/test.sh

bin/testreport: $(wildcard scripts/testreport/*.go) go.mod go.sum
	$(GO) build -o $@ ./scripts/testreport

# The OCI runtime-tools validation suite (v0.9.0, from the Go module
# proxy) against bin/kiln and runc, side by side (scripts/conformance.sh;
# needs root and runc; boots many guests, under /tmp/kiln-guest.lock; not
# part of make test). TESTS: a subset of its programs; RUNTIMES: kiln,
# runc or both. The latest counts are in docs/oci.md.
conformance: all
	TESTS='$(TESTS)' RUNTIMES='$(RUNTIMES)' scripts/conformance.sh

# Unit tests only: no kernel, no KVM.
unit:
	$(GO) test -count=1 -short ./...

# Fuzz every fuzz target in the tree for a while, FUZZTIME each;
# scripts/fuzz.sh finds them and prints a summary. go test minimizes each
# input that finds new coverage, and each failing one, for up to
# FUZZMINIMIZETIME: its own default, 60s, would take most of a short run.
FUZZTIME ?= 30s
FUZZMINIMIZETIME ?= 5s
FUZZPARALLEL ?=
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) FUZZPARALLEL=$(FUZZPARALLEL) scripts/fuzz.sh

# Boot and memory, kiln against QEMU microvm and containers (docs/benchmarks.md).
BENCH_ROUNDS ?= 5
bench: all
	bin/kiln bench --rounds $(BENCH_ROUNDS) --json bin/bench.json --svg bin/bench.svg

# 100 VMs one after another and 16 at once from one parent, then 100 and 16
# podman run --rm with kiln as the runtime (docs/reliability.md).
soak: all
	KILN_SOAK=100,16 $(GO) test -count=1 -v -timeout 180m -run '^(TestSoak|TestPodmanSoak)$$' ./cmd/kiln

# virtio-blk throughput and IOPS inside the guest, kiln against QEMU microvm.
bench-io: all
	scripts/bench-io.sh $(ROUNDS)

clean:
	rm -rf bin
