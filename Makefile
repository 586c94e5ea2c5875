# esox: every target does its own set-up on a fresh machine (Python 3.11, Rust, make).
PYTHON ?= python3
VENV ?= .venv
# The extension's cargo profile: dev-fast (optimised, no LTO: quick to
# rebuild) for development and tests; release (fat LTO) for benchmarks and
# wheels, which `make bench` and `make wheel` use whatever this says.
PROFILE ?= dev-fast
# Cargo features of the extension: empty for every build users get;
# FEATURES=public-api measures what the limited API would cost (docs/performance.md).
FEATURES ?=
# CPython 3.12 and 3.13 besides the venv's (3.11): each its own venv
# (.venv-3.12...) and cargo target dir, from pyenv or PYTHON3.12=/path/python.
OTHER_PYTHONS := 3.12 3.13
PYTHON3.12 ?= $(shell PYENV_VERSION=3.12 pyenv which python3.12 2>/dev/null || command -v python3.12)
PYTHON3.13 ?= $(shell PYENV_VERSION=3.13 pyenv which python3.13 2>/dev/null || command -v python3.13)
BIN := $(VENV)/bin
RUST_SOURCES := $(shell find rust -name "*.rs") Cargo.toml Cargo.lock
STAMP_DEPS := $(BIN)/.deps-installed
EXT_STAMP := $(BIN)/.esox-built

.PHONY: demo test test-public-api test-python test-rust format lint bench test-all build build-release wheel wheel-test \
	clean conformance conformance-update test-all-pythons wheels $(OTHER_PYTHONS:%=test-%) \
	$(OTHER_PYTHONS:%=wheel-%)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Dependencies change rarely: install them apart from building the extension.
$(STAMP_DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --group dev
	touch $@

# The Rust extension, built with $(PROFILE) and installed in development
# mode; switching profile or features rebuilds it (the marker is newer than the stamp).
$(EXT_STAMP): $(STAMP_DEPS) $(RUST_SOURCES) build.rs pyproject.toml $(BIN)/.profile-$(PROFILE)$(FEATURES)
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(BIN)):$$PATH \
		$(BIN)/maturin develop --profile $(PROFILE) $(FEATURES:%=--features %) --quiet
	touch $@

$(BIN)/.profile-%: | $(BIN)/python
	rm -f $(BIN)/.profile-*
	touch $@

build: $(EXT_STAMP)

# What benchmarks measure (bench uses it): the release build.
build-release:
	$(MAKE) build PROFILE=release

demo: build
	$(BIN)/esox demo

# Rust unit tests first, so that pytest's summary is the run's closing line.
# `make test` leaves out the slow tests (soak, stress, faults, multi-process,
# wheel builds) unless CI=true; `make test-all` runs everything, as CI does.
SLOW := $(if $(filter true,$(CI)),,-m "not slow")

test: build
	cargo test --quiet --lib
	$(BIN)/python -m pytest $(SLOW)

test-all: build
	cargo test --quiet --lib
	$(BIN)/python -m pytest

test-python: build
	$(BIN)/python -m pytest $(SLOW)

test-rust:
	cargo test --quiet --lib

format: $(STAMP_DEPS)
	$(BIN)/ruff format python tests benches
	$(BIN)/ruff check --fix python tests benches
	cargo fmt

lint: build
	$(BIN)/ruff check python tests benches
	$(BIN)/ruff format --check python tests benches
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest esox._core
	cargo fmt --check
	cargo clippy --all-targets --quiet -- -D warnings

bench: build-release
	mkdir -p bench-out
	$(BIN)/python -m pytest benches --benchmark-only --benchmark-columns=mean,ops,rounds \
		--benchmark-sort=name --benchmark-json=bench-out/results.json
	$(BIN)/python benches/report.py bench-out/results.json

# eventsourcing 9.5's tests, examples and docs, ported by rewriting imports only,
# on esox against eventsourcing 9.5.6 (tests/conformance/README.md). The corpus
# is ../shared/conformance/eventsourcing-9.5 unless ESOX_CONFORMANCE_CORPUS says.
# conformance-update rewrites pending.txt and the cached control results.
conformance: build
	$(BIN)/python -m tests.conformance.run $(CONFORMANCE_ARGS)

conformance-update: build
	$(BIN)/python -m tests.conformance.run --update --refresh-control $(CONFORMANCE_ARGS)

# A release wheel (fat LTO, stripped) for the venv's Python, in dist/, tagged with
# the oldest manylinux policy this machine's glibc allows (maturin checks every
# symbol): here, the crate `make build` compiled is reused. MANYLINUX=2_17 (or
# 2_28) links against that older glibc with zig instead (pip's ziglang), for
# systems older than this one: a separate, full build.
wheel: $(STAMP_DEPS)
ifeq ($(MANYLINUX),)
	$(BIN)/maturin build --release --interpreter $(BIN)/python --out dist
else
	$(BIN)/python -m pip install --quiet "ziglang>=0.13"
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/maturin build --release --interpreter $(BIN)/python \
		--out dist --zig --compatibility manylinux_$(MANYLINUX)
endif

# Install that wheel in a fresh venv, without Rust, and run the README and the
# recorder suite on it (builds the wheel first unless dist/ has a fresh one).
wheel-test: $(STAMP_DEPS)
	$(BIN)/python -m pytest tests/project/test_wheel.py


# The whole suite (Rust tests and pytest) on one of them: `make test-3.13`.
$(OTHER_PYTHONS:%=test-%): test-%:
	@test -x "$(PYTHON$*)" || { echo "no CPython $* found: pass PYTHON$*=/path/to/python$*"; exit 1; }
	CARGO_TARGET_DIR=target/py$* PYO3_PYTHON=$(PYTHON$*) \
		LD_LIBRARY_PATH=$$($(PYTHON$*) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))') \
		$(MAKE) test VENV=.venv-$* PYTHON=$(PYTHON$*)

$(OTHER_PYTHONS:%=wheel-%): wheel-%:
	@test -x "$(PYTHON$*)" || { echo "no CPython $* found: pass PYTHON$*=/path/to/python$*"; exit 1; }
	CARGO_TARGET_DIR=target/py$* PYO3_PYTHON=$(PYTHON$*) $(MAKE) wheel VENV=.venv-$* PYTHON=$(PYTHON$*)

# The public-API fallbacks of rust/cpython.rs (FEATURES=public-api, which no
# wheel has): the Rust tests, and the domain, persistence and application
# tests on an extension that uses no CPython internal that has a fallback.
# Both venvs load the extension from python/esox/, so the usual one is put
# back afterwards (a quick copy from its cargo target dir).
test-public-api:
	CARGO_TARGET_DIR=target/public-api cargo test --quiet --lib --features public-api
	rm -f .venv-public-api/bin/.esox-built
	CARGO_TARGET_DIR=target/public-api $(MAKE) build VENV=.venv-public-api FEATURES=public-api
	.venv-public-api/bin/python -m pytest tests/domain tests/persistence tests/application $(SLOW) \
		|| { rm -f $(EXT_STAMP); $(MAKE) build; exit 1; }
	rm -f $(EXT_STAMP)
	$(MAKE) build

test-all-pythons: test $(OTHER_PYTHONS:%=test-%)

# A wheel per supported CPython, in dist/.
wheels: wheel $(OTHER_PYTHONS:%=wheel-%)

clean:
	rm -rf $(VENV) $(OTHER_PYTHONS:%=.venv-%) .venv-public-api target dist build python/esox/*.so
