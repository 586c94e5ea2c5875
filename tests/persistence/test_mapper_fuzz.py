"""Bounded fuzzing of the mapper's decoding entry points (random and mutated
bytes, with zlib, zstd and AES on and off: only esox's own errors may come
out, never a crash or another exception) and property-based round trips over
generated values of every built-in type. Runs in well under a minute."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from enum import Enum
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esox._core import (
    AesGcm,
    Mapper,
    StoredEvent,
    decode_json,
    zlib_decompress,
    zstd_decompress,
)
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor, ZstdCompressor
from esox.persistence.errors import (
    MapperDeserialisationError,
    TranscodingNotRegisteredError,
)
from esox.persistence.transcoding import JSONTranscoder
from tests.values import Happened

KEY = AESCipher.create_key(16)
EXPECTED = (MapperDeserialisationError, TranscodingNotRegisteredError)


class Suit(Enum):
    HEARTS = "h"
    SPADES = "s"


@dataclass(frozen=True)
class Card:
    suit: Suit
    rank: int


TOPIC = "tests.values:Happened"
CONFIGS = ["plain", "zlib", "zstd", "aes", "zlib+aes", "zstd+aes"]


def mapper(config: str) -> Mapper:
    compressor = {"zlib": ZlibCompressor(), "zstd": ZstdCompressor()}.get(
        config.split("+")[0]
    )
    cipher = AESCipher({"CIPHER_KEY": KEY}) if "aes" in config else None
    return Mapper(JSONTranscoder(), compressor=compressor, cipher=cipher)


MAPPERS = {config: mapper(config) for config in CONFIGS}

SAMPLE_STATES = [
    b'{"value":{"_type_":"datetime_iso","_data_":"2024-01-02T03:04:05.000006+00:00"}}',
    b'{"value":[1,2.5,"x",null,true,{"_type_":"uuid_hex","_data_":"'
    + b"a" * 32
    + b'"}]}',
    b'{"value":{"_type_":"enum","_data_":{"topic":"tests.persistence.test_mapper_fuzz:Suit",'
    b'"value":"h"}},"class_version":1}',
    b'{"value":{"_type_":"dataclass","_data_":{"topic":"tests.persistence.test_mapper_fuzz:Card",'
    b'"fields":{"suit":null,"rank":3}}}}',
    b'{"value":{"_type_":"bytes_base64","_data_":"AAEC"},"d":{"_type_":"date_iso",'
    b'"_data_":"2024-02-29"},"m":{"_type_":"decimal_str","_data_":"1.5"}}',
]


def sealed(config: str, state: bytes) -> bytes:
    """``state`` compressed and encrypted as ``config`` says."""
    stored = MAPPERS["plain"].to_domain_event(StoredEvent(UUID(int=1), 1, TOPIC, state))
    return MAPPERS[config].to_stored_event(stored).state


def decode_or_refuse(config: str, state: bytes) -> None:
    stored = StoredEvent(UUID(int=1), 1, TOPIC, state)
    m = MAPPERS[config]
    for call in (
        lambda: m.to_domain_event(stored),
        lambda: m.to_domain_events([stored]),
    ):
        try:
            call()
        except EXPECTED as e:
            message = str(e)
            assert str(UUID(int=1)) in message
            assert TOPIC in message


FUZZ = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(st.sampled_from(CONFIGS), st.binary(max_size=300))
def test_random_bytes_never_crash_any_decoder(config: str, data: bytes) -> None:
    decode_or_refuse(config, data)


@FUZZ
@given(
    st.sampled_from(CONFIGS),
    st.sampled_from(SAMPLE_STATES),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("xdit")),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_valid_states_never_crash_any_decoder(
    config: str, state: bytes, edits: list[tuple[int, int, str]]
) -> None:
    data = bytearray(sealed(config, state))
    for at, byte, how in edits:
        at %= max(len(data), 1)
        if how == "x" and data:
            data[at] ^= byte or 1
        elif how == "d" and data:
            del data[at]
        elif how == "i":
            data.insert(at, byte)
        else:
            del data[at:]
    decode_or_refuse(config, bytes(data))


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_codecs(data: bytes) -> None:
    for decode in (
        lambda: decode_json(data, JSONTranscoder()),
        lambda: zlib_decompress(data),
        lambda: zstd_decompress(data),
        lambda: AesGcm(b"k" * 16).decrypt(data),
    ):
        with contextlib.suppress(EXPECTED):
            decode()


@FUZZ
@given(st.text(max_size=60))
def test_random_text_after_a_type_tag_is_refused_or_decoded(text: str) -> None:
    for name in ("uuid_hex", "decimal_str", "datetime_iso", "date_iso", "bytes_base64"):
        data = b'{"_type_":"' + name.encode() + b'","_data_":' + _json_str(text) + b"}"
        with contextlib.suppress(EXPECTED):
            decode_json(data, JSONTranscoder())


def _json_str(text: str) -> bytes:
    import json

    return json.dumps(text).encode()


timezones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.uuids()
    | st.decimals(allow_nan=False)
    | st.datetimes(timezones=timezones)
    | st.dates()
    | st.binary(max_size=20)
    | st.sampled_from(Suit)
    | st.builds(Card, st.sampled_from(Suit), st.integers(1, 13))
)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(CONFIGS))
def test_every_generated_value_round_trips(value: Any, config: str) -> None:
    event = Happened(UUID(int=3), 2, value)
    m = MAPPERS[config]
    assert m.to_domain_event(m.to_stored_event(event)) == event
    assert m.to_domain_events(m.to_stored_events([event, event])) == [event, event]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_truncation_of_a_sealed_state_is_refused_or_decoded(config: str) -> None:
    state = sealed(config, SAMPLE_STATES[0])
    for cut in range(len(state)):
        decode_or_refuse(config, state[:cut])
