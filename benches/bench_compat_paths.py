"""Code written for eventsourcing, on its less common paths: explicit event
classes under ``@dataclass(frozen=True)``, and a mapper subclass whose
per-event methods are Python. esox against eventsourcing 9.x, in one run.

Run: pytest benches/bench_compat_paths.py --benchmark-only
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import eventsourcing.domain as es_domain
import eventsourcing.persistence as es_persistence
import eventsourcing.utils as es_utils
import orjson
import pytest

from esox.bench.workloads.mapper import events as events_of
from esox.domain import Aggregate
from esox.persistence import JSONTranscoder, Mapper, StoredEvent
from esox.utils import get_topic, resolve_topic

N_EVENTS = 1000


class Account(Aggregate):
    """eventsourcing's test-domain style: explicit frozen dataclass events."""

    @dataclass(frozen=True)
    class Opened(Aggregate.Created):
        full_name: str

    @dataclass(frozen=True)
    class Credited(Aggregate.Event):
        amount: int

        def apply(self, aggregate: Any) -> None:
            aggregate.balance += self.amount

    def __init__(self, full_name: str) -> None:
        self.full_name = full_name
        self.balance = 0

    def credit(self, amount: int) -> None:
        self.trigger_event(self.Credited, amount=amount)


class EsAccount(es_domain.Aggregate):
    @dataclass(frozen=True)
    class Opened(es_domain.Aggregate.Created):
        full_name: str

    @dataclass(frozen=True)
    class Credited(es_domain.Aggregate.Event):
        amount: int

        def apply(self, aggregate: Any) -> None:
            aggregate.balance += self.amount

    def __init__(self, full_name: str) -> None:
        self.full_name = full_name
        self.balance = 0

    def credit(self, amount: int) -> None:
        self.trigger_event(self.Credited, amount=amount)


def open_and_credit(account_cls: Any) -> Any:
    account = account_cls._create(account_cls.Opened, full_name="Alice")
    for _ in range(9):
        account.credit(10)
    return account


@pytest.mark.benchmark(group="frozen dataclass events: open and credit 9 times")
def test_frozen_dataclass_events_esox(benchmark: Any) -> None:
    assert benchmark(open_and_credit, Account).balance == 90


@pytest.mark.benchmark(group="frozen dataclass events: open and credit 9 times")
def test_frozen_dataclass_events_eventsourcing(benchmark: Any) -> None:
    assert benchmark(open_and_credit, EsAccount).balance == 90


class PythonMapper(Mapper[UUID]):
    """A mapper of one's own, per event in Python (as pydantic and msgspec
    mappers are written): JSON of the event's attributes with orjson."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = dict(domain_event.__dict__)
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        state["timestamp"] = state["timestamp"].isoformat()
        return StoredEvent(
            originator_id,
            originator_version,
            get_topic(type(domain_event)),
            orjson.dumps(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        event = object.__new__(cls)
        state = orjson.loads(stored_event.state)
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        object.__setattr__(event, "__dict__", state)
        return event


class EsPythonMapper(es_persistence.Mapper):
    def to_stored_event(self, domain_event: Any) -> Any:
        state = dict(domain_event.__dict__)
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        state["timestamp"] = state["timestamp"].isoformat()
        return es_persistence.StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=es_utils.get_topic(type(domain_event)),
            state=orjson.dumps(state),
        )

    def to_domain_event(self, stored_event: Any) -> Any:
        cls = es_utils.resolve_topic(stored_event.topic)
        event = object.__new__(cls)
        state = orjson.loads(stored_event.state)
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        object.__setattr__(event, "__dict__", state)
        return event


def round_trip_esox(mapper: Mapper[UUID], events: list[Any]) -> list[Any]:
    return mapper.to_domain_events(mapper.to_stored_events(events))


def round_trip_es(mapper: Any, events: list[Any]) -> list[Any]:
    return [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]


@pytest.mark.benchmark(group=f"python mapper subclass: round trip of {N_EVENTS} events")
def test_python_mapper_esox(benchmark: Any) -> None:
    events = events_of("Dog", "esox", N_EVENTS)
    copies = benchmark(round_trip_esox, PythonMapper(JSONTranscoder()), events)
    assert [e.originator_version for e in copies] == list(range(1, N_EVENTS + 1))


@pytest.mark.benchmark(group=f"python mapper subclass: round trip of {N_EVENTS} events")
def test_python_mapper_eventsourcing(benchmark: Any) -> None:
    events = events_of("Dog", "eventsourcing", N_EVENTS)
    mapper = EsPythonMapper(transcoder=es_persistence.JSONTranscoder())
    copies = benchmark(round_trip_es, mapper, events)
    assert [e.originator_version for e in copies] == list(range(1, N_EVENTS + 1))
