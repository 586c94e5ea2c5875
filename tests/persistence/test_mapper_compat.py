"""Stored events written by eventsourcing 9.x's Mapper read in esox, and the
other way round, for every built-in type, with and without its ZlibCompressor
and AESCipher (same key)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID, uuid4

import eventsourcing.persistence as es
import pytest
from eventsourcing.cipher import AESCipher as EsAESCipher
from eventsourcing.compressor import ZlibCompressor as EsZlibCompressor
from eventsourcing.utils import Environment

from esox._core import Mapper
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor
from esox.persistence.transcoding import (
    BytesAsBase64,
    DataclassAsTopicFields,
    DateAsISO,
    EnumAsTopicValue,
    JSONTranscoder,
)
from tests.values import Happened, Money, MoneyAsDict

KEY = AESCipher.create_key(32)


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Point:
    x: int
    y: Decimal


VALUES: list[Any] = [
    'text with ☃ and "quotes" and \n',
    0,
    -(2**70),
    1.5,
    float("inf"),
    True,
    None,
    [1, ["nested", {"k": None}]],
    {"a": 1, "ключ": [True, False]},
    UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("-12.3400"),
    datetime(2024, 2, 29, 7, 5, 9, 42, tzinfo=UTC),
    datetime(2024, 2, 29, 7, 5, 9),
    datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    date(2024, 3, 1),
    b"\x00\x01binary\xff",
    Colour.BLUE,
    Point(3, Decimal("0.5")),
    Money(Decimal("9.99"), "EUR"),
    {
        "everything": [
            UUID(int=1),
            Decimal("1E+3"),
            datetime(2000, 1, 1, tzinfo=UTC),
            date(1999, 12, 31),
            b"",
            Colour.RED,
            Point(-1, Decimal("2")),
            Money(Decimal("0"), "GBP"),
        ]
    },
]

CONFIGS = ["plain", "zlib", "aes", "zlib+aes"]


def esox_mapper(config: str) -> Mapper:
    transcoder = JSONTranscoder()
    transcoder.register(MoneyAsDict())
    return Mapper(
        transcoder,
        compressor=ZlibCompressor() if "zlib" in config else None,
        cipher=AESCipher({"CIPHER_KEY": KEY}) if "aes" in config else None,
    )


def es_mapper(config: str) -> es.Mapper[UUID]:
    transcoder = es.JSONTranscoder()
    for transcoding in (
        es.UUIDAsHex(),
        es.DecimalAsStr(),
        es.DatetimeAsISO(),
        # What eventsourcing lacks, from esox (see esox.persistence.transcoding).
        DateAsISO(),
        BytesAsBase64(),
        EnumAsTopicValue(Colour),
        DataclassAsTopicFields(Point),
        MoneyAsDict(),
    ):
        transcoder.register(transcoding)
    return es.Mapper(
        transcoder,
        compressor=EsZlibCompressor() if "zlib" in config else None,
        cipher=EsAESCipher(Environment(env={"CIPHER_KEY": KEY}))
        if "aes" in config
        else None,
    )


def plain_json(state: bytes, config: str) -> bytes:
    if "aes" in config:
        state = AESCipher({"CIPHER_KEY": KEY}).decrypt(state)
    if "zlib" in config:
        state = zlib.decompress(state)
    return state


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_eventsourcing_reads_what_esox_writes(value: Any, config: str) -> None:
    event = Happened(uuid4(), 3, value)
    stored = esox_mapper(config).to_stored_event(event)
    assert es_mapper(config).to_domain_event(stored) == event  # type: ignore[arg-type]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_esox_reads_what_eventsourcing_writes(value: Any, config: str) -> None:
    event = Happened(uuid4(), 3, value)
    stored = es_mapper(config).to_stored_event(event)  # type: ignore[arg-type]
    mapper = esox_mapper(config)
    assert mapper.to_domain_event(stored) == event
    assert mapper.to_domain_events([stored, stored]) == [event, event]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_both_write_the_same_json(value: Any, config: str) -> None:
    event = Happened(UUID(int=9), 1, value)
    ours = esox_mapper(config).to_stored_event(event)
    theirs = es_mapper(config).to_stored_event(event)  # type: ignore[arg-type]
    assert (ours.topic, ours.originator_id, ours.originator_version) == (
        theirs.topic,
        theirs.originator_id,
        theirs.originator_version,
    )
    assert plain_json(ours.state, config) == plain_json(theirs.state, config)
    if config == "plain":
        assert ours.state == theirs.state


def test_a_batch_written_by_eventsourcing_with_zlib_and_aes_reads_in_one_call() -> None:
    events = [Happened(uuid4(), i, VALUES[i % len(VALUES)]) for i in range(1, 500)]
    theirs = es_mapper("zlib+aes")
    stored = [theirs.to_stored_event(e) for e in events]  # type: ignore[arg-type]
    assert esox_mapper("zlib+aes").to_domain_events(stored) == events
