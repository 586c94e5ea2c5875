"""Mapper: esox against eventsourcing 9.x (and orjson), 10,000 events a call.

Run: make bench (or: pytest benches/bench_mapper.py --benchmark-only)
Each group encodes or decodes 10,000 events of one kind (the README's Dog
``TrickAdded`` events, or ``Shipped`` events with ten attributes of mixed
types) with one configuration: plain JSON, zlib, zstd, AES-GCM, zlib+AES.
Members: ``esox`` (one batch call), ``eventsourcing`` (its mapper, event by
event, with its ZlibCompressor and AESCipher; eventsourcing has no zstd, so
the zstd groups compare with its zlib) and, for plain JSON, ``orjson``
(``orjson.dumps`` of each event's attribute dict / ``orjson.loads`` of each
state: walking and writing JSON, or parsing it, with no event built).

Before timing, the set-up's objects are collected and frozen (``gc.freeze``),
so that the cycle collector's full collections during a round traverse what
that round makes, not the 80,000 events the module keeps for all its tests:
the same for every member of a group.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import eventsourcing.domain as es_domain
import eventsourcing.persistence as es_persistence
import orjson
import pytest
from eventsourcing.cipher import AESCipher as EsAESCipher
from eventsourcing.compressor import ZlibCompressor as EsZlibCompressor
from eventsourcing.utils import Environment

import esox
from esox.bench.es_models import Dog as EsDog
from esox.bench.models import Dog
from esox.persistence import (
    AESCipher,
    JSONTranscoder,
    Mapper,
    ZlibCompressor,
    ZstdCompressor,
)

N_EVENTS = 10_000
CONFIGS = ["plain", "zlib", "zstd", "aes", "zlib+aes"]
KEY = AESCipher.create_key(32)


class Order(esox.Aggregate):
    @esox.event("Placed")
    def __init__(self) -> None:
        self.shipments = 0

    @esox.event("Shipped")
    def ship(
        self,
        parcel_id: UUID,
        carrier: str,
        weight_kg: float,
        items: int,
        price: Decimal,
        express: bool,
        note: str | None,
        shipped_at: datetime,
        tags: list[str],
        address: dict[str, str],
    ) -> None:
        self.shipments += 1


class EsOrder(es_domain.Aggregate):
    @es_domain.event("Placed")
    def __init__(self) -> None:
        self.shipments = 0

    @es_domain.event("Shipped")
    def ship(
        self,
        parcel_id: UUID,
        carrier: str,
        weight_kg: float,
        items: int,
        price: Decimal,
        express: bool,
        note: str | None,
        shipped_at: datetime,
        tags: list[str],
        address: dict[str, str],
    ) -> None:
        self.shipments += 1


def dog_events(cls: Any) -> list[Any]:
    dog = cls("Fido")
    for i in range(N_EVENTS):
        dog.add_trick(f"trick {i}")
    return list(dog.collect_events())[1:]


def order_events(cls: Any) -> list[Any]:
    order = cls()
    for i in range(N_EVENTS):
        order.ship(
            parcel_id=uuid4(),
            carrier="Parcelforce",
            weight_kg=1.25 + i,
            items=i % 7,
            price=Decimal("19.99"),
            express=i % 2 == 0,
            note=None if i % 3 else "leave with neighbour",
            shipped_at=datetime(2024, 5, 6, 7, 8, 9, i % 1000, tzinfo=UTC),
            tags=["fragile", "gift"],
            address={"street": "1 High St", "city": "Leeds", "postcode": "LS1 1AA"},
        )
    return list(order.collect_events())[1:]


EVENTS = {"Dog": (Dog, EsDog, dog_events), "Shipped": (Order, EsOrder, order_events)}


def esox_mapper(config: str) -> Mapper:
    compressor = {"zlib": ZlibCompressor(), "zstd": ZstdCompressor()}.get(
        config.split("+")[0]
    )
    cipher = AESCipher({"CIPHER_KEY": KEY}) if "aes" in config else None
    return Mapper(JSONTranscoder(), compressor=compressor, cipher=cipher)


def es_mapper(config: str) -> Any:
    transcoder = es_persistence.JSONTranscoder()
    transcoder.register(es_persistence.UUIDAsHex())
    transcoder.register(es_persistence.DecimalAsStr())
    transcoder.register(es_persistence.DatetimeAsISO())
    compressor = EsZlibCompressor() if "z" in config else None
    cipher = (
        EsAESCipher(Environment(env={"CIPHER_KEY": KEY})) if "aes" in config else None
    )
    return es_persistence.Mapper(transcoder, compressor=compressor, cipher=cipher)


def orjson_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    raise TypeError


_cache: dict[tuple[str, str], Any] = {}


def events_of(kind: str, library: str) -> list[Any]:
    key = (kind, library)
    if key not in _cache:
        esox_cls, es_cls, make = EVENTS[kind]
        _cache[key] = make(esox_cls if library == "esox" else es_cls)
    return _cache[key]  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


def settle() -> None:
    """Collect, then freeze what is left (see the module docstring)."""
    gc.collect()
    gc.freeze()


ENCODE = pytest.mark.benchmark(group=f"mapper encode {N_EVENTS} events")
DECODE = pytest.mark.benchmark(group=f"mapper decode {N_EVENTS} events")
KINDS = pytest.mark.parametrize("kind", list(EVENTS))
ALL_CONFIGS = pytest.mark.parametrize("config", CONFIGS)
PLAIN = pytest.mark.parametrize("config", ["plain"])


@ENCODE
@ALL_CONFIGS
@KINDS
def test_encode_esox(benchmark: Any, kind: str, config: str) -> None:
    mapper, events = esox_mapper(config), events_of(kind, "esox")
    settle()
    stored = benchmark(mapper.to_stored_events, events)
    assert len(stored) == N_EVENTS


@ENCODE
@ALL_CONFIGS
@KINDS
def test_encode_eventsourcing(benchmark: Any, kind: str, config: str) -> None:
    mapper, events = es_mapper(config), events_of(kind, "eventsourcing")
    settle()
    stored = benchmark(lambda: [mapper.to_stored_event(e) for e in events])
    assert len(stored) == N_EVENTS


@ENCODE
@PLAIN
@KINDS
def test_encode_orjson(benchmark: Any, kind: str, config: str) -> None:
    events = events_of(kind, "esox")
    dumps = orjson.dumps
    settle()
    states = benchmark(lambda: [dumps(vars(e), default=orjson_default) for e in events])
    assert len(states) == N_EVENTS


@DECODE
@ALL_CONFIGS
@KINDS
def test_decode_esox(benchmark: Any, kind: str, config: str) -> None:
    mapper = esox_mapper(config)
    stored = mapper.to_stored_events(events_of(kind, "esox"))
    settle()
    events = benchmark(mapper.to_domain_events, stored)
    assert events == events_of(kind, "esox")


@DECODE
@ALL_CONFIGS
@KINDS
def test_decode_eventsourcing(benchmark: Any, kind: str, config: str) -> None:
    mapper = es_mapper(config)
    stored = [mapper.to_stored_event(e) for e in events_of(kind, "eventsourcing")]
    settle()
    events = benchmark(lambda: [mapper.to_domain_event(s) for s in stored])
    assert len(events) == N_EVENTS


@DECODE
@PLAIN
@KINDS
def test_decode_orjson(benchmark: Any, kind: str, config: str) -> None:
    stored = esox_mapper(config).to_stored_events(events_of(kind, "esox"))
    loads = orjson.loads
    settle()
    states = benchmark(lambda: [loads(s.state) for s in stored])
    assert len(states) == N_EVENTS
