"""Domain model and mapper: esox against eventsourcing 9.x, in one run.

Run: make bench (or: pytest benches/bench_domain.py --benchmark-only)
Each group has an ``esox`` and an ``eventsourcing`` member; compare their means.
"""

from __future__ import annotations

from typing import Any

import eventsourcing.persistence as es_persistence
import pytest

from esox.bench.es_models import Dog as EsDog
from esox.bench.models import Dog
from esox.persistence import JSONTranscoder, Mapper

N_EVENTS = 1000


def esox_mapper() -> Mapper:
    return Mapper(JSONTranscoder())


def es_mapper() -> Any:
    transcoder = es_persistence.JSONTranscoder()
    transcoder.register(es_persistence.UUIDAsHex())
    transcoder.register(es_persistence.DecimalAsStr())
    transcoder.register(es_persistence.DatetimeAsISO())
    return es_persistence.Mapper(transcoder=transcoder)


def dog_events(dog_cls: Any, n: int) -> list[Any]:
    dog = dog_cls("Fido")
    for i in range(n - 1):
        dog.add_trick(f"trick {i}")
    return list(dog.collect_events())


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
    mapper, events = esox_mapper(), dog_events(Dog, N_EVENTS)
    stored = benchmark(mapper.to_stored_events, events)
    assert len(stored) == N_EVENTS


@pytest.mark.benchmark(group=f"encode {N_EVENTS} events")
def test_encode_eventsourcing(benchmark: Any) -> None:
    mapper, events = es_mapper(), dog_events(EsDog, N_EVENTS)
    stored = benchmark(lambda: [mapper.to_stored_event(e) for e in events])
    assert len(stored) == N_EVENTS


@pytest.mark.benchmark(group=f"decode {N_EVENTS} events")
def test_decode_esox(benchmark: Any) -> None:
    mapper = esox_mapper()
    stored = mapper.to_stored_events(dog_events(Dog, N_EVENTS))
    events = benchmark(mapper.to_domain_events, stored)
    assert events[-1].trick == f"trick {N_EVENTS - 2}"


@pytest.mark.benchmark(group=f"decode {N_EVENTS} events")
def test_decode_eventsourcing(benchmark: Any) -> None:
    mapper = es_mapper()
    stored = [mapper.to_stored_event(e) for e in dog_events(EsDog, N_EVENTS)]
    events = benchmark(lambda: [mapper.to_domain_event(s) for s in stored])
    assert events[-1].trick == f"trick {N_EVENTS - 2}"
