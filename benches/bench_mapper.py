"""Mapper: esox against eventsourcing 9.x and orjson, 10,000 events a call.

Run: make bench (or: pytest benches/bench_mapper.py --benchmark-only), then
benches/report.py. The workloads are ``esox bench``'s own
(``esox.bench.workloads.mapper``): each group encodes or decodes 10,000 events
of one kind (the README's Dog ``TrickAdded`` events, or ``Shipped`` events
with ten attributes of mixed types: the variants "..., 10 attributes") with
one configuration: plain JSON, zlib, zstd, AES-GCM, zlib+AES. Members:
``esox`` (one batch call), ``eventsourcing`` (its mapper, event by event,
with its ZlibCompressor and AESCipher; it has no zstd, so its side of the
zstd groups is its zlib) and ``limit`` (``orjson.dumps`` of each event's
state dict / ``orjson.loads`` of each state, with zlib and AES-GCM as the
configuration has: JSON alone, no event built; none for zstd). The set-up's
events are collected and frozen before the rounds (``support.bench_side``).
"""

from __future__ import annotations

from typing import Any

import pytest

from esox.bench.harness import Workload
from esox.bench.workloads.mapper import workloads
from support import bench_side, each_workload, workloads_at

SCALE = 10_000
ENCODES = workloads_at(workloads, SCALE, family="mapper encode")
DECODES = workloads_at(workloads, SCALE, family="mapper decode")


ENCODE = f"mapper encode ({SCALE:,} events)"
DECODE = f"mapper decode ({SCALE:,} events)"


@pytest.mark.benchmark(group=ENCODE)
@each_workload(ENCODES)
def test_encode_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=ENCODE)
@each_workload(ENCODES)
def test_encode_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")


@pytest.mark.benchmark(group=ENCODE)
@each_workload(ENCODES)
def test_encode_limit(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "limit")


@pytest.mark.benchmark(group=DECODE)
@each_workload(DECODES)
def test_decode_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=DECODE)
@each_workload(DECODES)
def test_decode_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")


@pytest.mark.benchmark(group=DECODE)
@each_workload(DECODES)
def test_decode_limit(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "limit")
