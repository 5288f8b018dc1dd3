# rt: build, test, demo. Everything runs as root on Debian; .ci/setup.sh installs
# what is missing (busybox-static, runc, jq).
SHELL := /bin/bash
CARGO ?= cargo
RUNC ?= $(shell command -v runc 2>/dev/null)
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
# The release rt is linked statically and not position-independent: no dynamic loader, no shared
# libraries to map and no relocations to apply when each rt process starts (rt exec is two of
# them). Measured with bench/: exec 5.5 -> 4.3 ms, peak RSS 5.4 -> 4.7 MiB. --target keeps these
# flags off build scripts and proc-macros, which cannot be static.
RELEASE_RUSTFLAGS ?= -C target-feature=+crt-static -C relocation-model=static
RT_RELEASE := target/$(HOST)/release/rt

.PHONY: all build setup test test-runc test-v2 demo bench bench-cri bench-cri-v2 bench-v2 hot-functions clean

all: build

build:
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" $(CARGO) build --release --target $(HOST)
	@echo "built $(RT_RELEASE)"

setup:
	bash .ci/setup.sh

# Unit tests need no root; the integration tests (integration/) run the debug rt as
# root and print "skip:" when not root. test-runc then proves the same tests against
# runc, so a test that a correct runtime fails is caught here, not in rt's code.
test: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test -- --test-threads=2
	$(MAKE) test-runc

test-runc:
	@if [ -n "$(RUNC)" ] && [ "$$(id -u)" = 0 ]; then \
	  echo "integration tests against $(RUNC):"; \
	  RT_BIN=$(RUNC) $(CARGO) test --test integration -- --test-threads=2 --skip image::; \
	else echo "test-runc: skipped (needs root and runc)"; fi

# The scenarios of vm/scenarios on a pure cgroup v2 host with systemd as PID 1: a Debian 12
# guest (built from Debian's packages, cached in target/vm/) under qemu, against the release rt
# and the guest's runc with the cgroupfs and the systemd driver. vm/test-v2.sh says more.
test-v2: setup build
	bash vm/test-v2.sh $(RT_RELEASE)

# create+start+delete in the v2 guest, rt against its runc, with each cgroup driver, as ratios.
bench-v2: setup build
	RT=$(RT_RELEASE) bash vm/run.sh vm/guest/bench.sh bundles

demo: setup build
	bash bundles/demo.sh $(RT_RELEASE)

bench: build
	RT=$(RT_RELEASE) bash bench/run.sh

# Pod start latency through containerd's CRI: the release rt against runc in one containerd
# (integration/cri/latency.rs prints the medians and the ratio).
bench-cri: setup build
	RT_BIN=$(CURDIR)/$(RT_RELEASE) $(CARGO) test --test integration -- cri::latency --nocapture

# The same in the v2 guest, with each cgroup driver (SystemdCgroup = true under systemd): the
# cri-latency scenario of vm/scenarios.more, whose medians and ratios test-v2.sh prints.
bench-cri-v2: setup build
	RT_VM_MORE=1 RT_VM_RUNTIMES=rt RT_VM_TESTS=cri::latency::cri_pod_start_latency_rt_vs_runc \
	  bash vm/test-v2.sh $(RT_RELEASE)

# Re-lists the functions build.rs packs together at the start of the binary (bench/hotpath.py).
hot-functions:
	bash bench/hotpath.sh

clean:
	$(CARGO) clean
