"""Domain model and mapper: esox against eventsourcing 9.x, in one run.

Run: make bench (or: pytest benches/bench_domain.py --benchmark-only)
Each group has an ``esox`` and an ``eventsourcing`` member; compare their means.
The mapper groups are ``esox bench``'s "mapper encode" and "mapper decode"
workloads, plain JSON, at 1,000 events (``benches/bench_mapper.py`` has
every configuration at 10,000).
"""

from __future__ import annotations

from typing import Any

import pytest

from esox.bench.es_models import Dog as EsDog
from esox.bench.harness import Workload
from esox.bench.models import Dog
from esox.bench.workloads.mapper import workloads
from support import bench_side, workloads_at

N_EVENTS = 1000


def plain(family: str) -> Workload:
    (found,) = workloads_at(
        workloads, N_EVENTS, family=family, keep=lambda w: w.variant == "plain"
    )
    return found


ENCODE, DECODE = plain("mapper encode"), plain("mapper decode")


@pytest.mark.benchmark(group="create aggregate (one event)")
def test_create_aggregate_esox(benchmark: Any) -> None:
    benchmark(Dog, "Fido")


@pytest.mark.benchmark(group="create aggregate (one event)")
def test_create_aggregate_eventsourcing(benchmark: Any) -> None:
    benchmark(EsDog, "Fido")


@pytest.mark.benchmark(group="trigger event")
def test_trigger_event_esox(benchmark: Any) -> None:
    dog = Dog("Fido")
    benchmark(dog.add_trick, "roll over")


@pytest.mark.benchmark(group="trigger event")
def test_trigger_event_eventsourcing(benchmark: Any) -> None:
    dog = EsDog("Fido")
    benchmark(dog.add_trick, "roll over")


@pytest.mark.benchmark(group=f"encode {N_EVENTS} events")
def test_encode_esox(benchmark: Any) -> None:
    bench_side(benchmark, ENCODE, "esox")


@pytest.mark.benchmark(group=f"encode {N_EVENTS} events")
def test_encode_eventsourcing(benchmark: Any) -> None:
    bench_side(benchmark, ENCODE, "eventsourcing")


@pytest.mark.benchmark(group=f"decode {N_EVENTS} events")
def test_decode_esox(benchmark: Any) -> None:
    bench_side(benchmark, DECODE, "esox")


@pytest.mark.benchmark(group=f"decode {N_EVENTS} events")
def test_decode_eventsourcing(benchmark: Any) -> None:
    bench_side(benchmark, DECODE, "eventsourcing")
