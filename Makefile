# rt: build, test, demo. Everything runs as root on Debian; .ci/setup.sh installs
# what is missing (busybox-static, runc, jq).
SHELL := /bin/bash
CARGO ?= cargo
RUNC ?= $(shell command -v runc 2>/dev/null)

.PHONY: all build setup test test-runc demo bench clean

all: build

build:
	$(CARGO) build --release

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

demo: setup build
	bash bundles/demo.sh target/release/rt

bench: build
	@if [ -x bench/run.sh ]; then bench/run.sh; else echo "bench: no bench/run.sh yet"; fi

clean:
	$(CARGO) clean
