# esox: every target does its own set-up on a fresh machine (Python 3.11, Rust, make).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUST_SOURCES := $(shell find rust -name "*.rs") Cargo.toml Cargo.lock
STAMP_DEPS := $(BIN)/.deps-installed
EXT_STAMP := $(BIN)/.esox-built

.PHONY: demo test test-all test-python test-rust format lint bench build wheel wheel-test clean \
	conformance conformance-update

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Dependencies change rarely: install them apart from building the extension.
$(STAMP_DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --group dev
	touch $@

# Release build of the Rust extension, installed in development mode.
$(EXT_STAMP): $(STAMP_DEPS) $(RUST_SOURCES) pyproject.toml
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(BIN)):$$PATH $(BIN)/maturin develop --release --quiet
	touch $@

build: $(EXT_STAMP)

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

bench: build
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

clean:
	rm -rf $(VENV) target dist build python/esox/*.so
