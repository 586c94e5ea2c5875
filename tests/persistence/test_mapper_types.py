"""The mapper's built-in types beyond eventsourcing's: date, bytes, enum members
and frozen dataclasses, natively and through their Python transcodings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, Flag, IntEnum, StrEnum
from typing import Any
from uuid import UUID, uuid4

import pytest

from esox._core import Mapper, StoredEvent, decode_json, encode_json
from esox.persistence.errors import (
    MapperDeserialisationError,
    TranscodingNotRegisteredError,
)
from esox.persistence.transcoding import (
    BytesAsBase64,
    DataclassAsTopicFields,
    DateAsISO,
    EnumAsTopicValue,
    JSONTranscoder,
    Transcoding,
)
from tests.values import Happened


class Colour(Enum):
    RED = "red"
    GREEN = "green"


class Planet(Enum):
    EARTH = (5.97e24, 6.37e6)
    MARS = (6.42e23, 3.39e6)


class Perm(Flag):
    R = 4
    W = 2
    X = 1


class Size(IntEnum):
    BIG = 3


class Tone(StrEnum):
    LOW = "low"


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    price: Money
    tags: tuple[str, ...] = ()
    extras: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Parcel:
    lines: list[Line]
    sent: date
    colour: Colour
    label: bytes


@dataclass
class Mutable:
    x: int


def round_trip(value: Any, transcoder: Any = None) -> Any:
    mapper = Mapper(transcoder or JSONTranscoder())
    stored = mapper.to_stored_event(Happened(uuid4(), 1, value))
    return mapper.to_domain_event(stored).value


def test_dates_are_stored_as_iso_text() -> None:
    value = date(2024, 3, 1)
    assert encode_json(value, JSONTranscoder()) == (
        b'{"_type_":"date_iso","_data_":"2024-03-01"}'
    )
    assert round_trip(value) == value
    assert type(round_trip(date(1, 1, 1))) is date


def test_datetimes_are_not_mistaken_for_dates() -> None:
    value = datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert round_trip(value) == value
    assert type(round_trip(value)) is datetime


@pytest.mark.parametrize("value", [b"", b"\x00\xff", b"hello world", bytes(range(256))])
def test_bytes_are_stored_as_base64(value: bytes) -> None:
    data = encode_json(value, JSONTranscoder())
    assert data.startswith(b'{"_type_":"bytes_base64","_data_":"')
    assert round_trip(value) == value


def test_invalid_base64_is_a_deserialisation_error() -> None:
    mapper = Mapper(JSONTranscoder())
    state = b'{"value":{"_type_":"bytes_base64","_data_":"not base64!"}}'
    with pytest.raises(MapperDeserialisationError, match="bytes_base64"):
        mapper.to_domain_event(StoredEvent(uuid4(), 1, topic(Happened), state))


def topic(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@pytest.mark.parametrize(
    "member", [Colour.RED, Planet.MARS, Perm.R, Perm.R | Perm.W, Perm(0)]
)
def test_enum_members_round_trip_by_topic_and_value(member: Enum) -> None:
    assert round_trip(member) is member


def test_enum_members_are_stored_with_their_topic() -> None:
    assert encode_json(Colour.RED, JSONTranscoder()) == (
        b'{"_type_":"enum","_data_":{"topic":"tests.persistence.test_mapper_types:Colour",'
        b'"value":"red"}}'
    )


def test_int_and_str_enums_are_written_as_json_and_eventsourcing_write_them() -> None:
    assert encode_json([Size.BIG, Tone.LOW], JSONTranscoder()) == b'[3,"low"]'


def test_a_transcoding_registered_for_an_enum_class_wins() -> None:
    t = JSONTranscoder()
    t.register(EnumAsTopicValue(Size))
    assert round_trip(Size.BIG, t) is Size.BIG


def test_frozen_dataclasses_round_trip_without_init() -> None:
    parcel = Parcel(
        lines=[
            Line("a", Money(Decimal("9.99"), "EUR"), ("x",), ["y"]),
            Line("b", Money(Decimal("-1"), "GBP")),
        ],
        sent=date(2024, 5, 6),
        colour=Colour.GREEN,
        label=b"\x01\x02",
    )
    decoded = round_trip(parcel)
    assert type(decoded) is Parcel
    # Tuples come back as lists (JSON has no tuples), as everywhere else.
    assert decoded.lines[0].tags == ["x"]
    assert decoded == dataclasses.replace(
        parcel,
        lines=[
            dataclasses.replace(line, tags=list(line.tags)) for line in parcel.lines
        ],
    )


def test_dataclass_data_lists_the_topic_and_every_field() -> None:
    data = encode_json(Money(Decimal("1"), "EUR"), JSONTranscoder())
    assert data == (
        b'{"_type_":"dataclass","_data_":{"topic":"tests.persistence.test_mapper_types:Money",'
        b'"fields":{"amount":{"_type_":"decimal_str","_data_":"1"},"currency":"EUR"}}}'
    )


def test_missing_dataclass_fields_take_their_defaults() -> None:
    data = (
        b'{"_type_":"dataclass","_data_":{"topic":"tests.persistence.test_mapper_types:Line",'
        b'"fields":{"sku":"a","price":null}}}'
    )
    line = decode_json(data, JSONTranscoder())
    assert line == Line("a", None, (), [])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (b'{"currency":"EUR"}', "no field 'amount'"),
        (b'{"amount":1,"currency":"EUR","rate":2}', "'rate'"),
    ],
)
def test_dataclass_fields_that_do_not_fit_the_class_are_refused(
    fields: bytes, problem: str
) -> None:
    data = (
        b'{"_type_":"dataclass","_data_":{"topic":"tests.persistence.test_mapper_types:Money",'
        b'"fields":' + fields + b"}}"
    )
    with pytest.raises(MapperDeserialisationError, match=problem):
        decode_json(data, JSONTranscoder())


def test_mutable_dataclasses_are_refused_with_a_hint() -> None:
    with pytest.raises(
        TranscodingNotRegisteredError, match="make the dataclass frozen"
    ):
        encode_json({"m": Mutable(1)}, JSONTranscoder())


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            b'{"topic":"tests.persistence.test_mapper_types:Nope","value":1}',
            "could not resolve",
        ),
        (
            b'{"topic":"tests.persistence.test_mapper_types:Money","value":1}',
            "not name an Enum",
        ),
        (
            b'{"topic":"tests.persistence.test_mapper_types:Colour","value":"blue"}',
            "blue",
        ),
        (b'{"value":1}', "topic"),
        (b'"red"', "topic"),
    ],
)
def test_bad_enum_data_names_the_problem(data: bytes, problem: str) -> None:
    state = b'{"_type_":"enum","_data_":' + data + b"}"
    with pytest.raises(MapperDeserialisationError, match=problem):
        decode_json(state, JSONTranscoder())


def test_dataclass_topic_must_name_a_frozen_dataclass() -> None:
    state = (
        b'{"_type_":"dataclass","_data_":{"topic":"tests.persistence.test_mapper_types:Mutable",'
        b'"fields":{"x":1}}}'
    )
    with pytest.raises(MapperDeserialisationError, match="frozen dataclass"):
        decode_json(state, JSONTranscoder())


class Slow(Transcoding):
    """Wraps a built-in transcoding in a subclass, so the Python path is used."""

    def __init__(self, inner: Transcoding) -> None:
        self.inner = inner
        self.type = inner.type
        self.name = inner.name

    def encode(self, obj: Any) -> Any:
        return self.inner.encode(obj)

    def decode(self, data: Any) -> Any:
        return self.inner.decode(data)


def python_transcoder() -> JSONTranscoder:
    t = JSONTranscoder()
    for transcoding in (DateAsISO(), BytesAsBase64()):
        t.register(Slow(transcoding))
    for generic in (EnumAsTopicValue(), DataclassAsTopicFields()):
        t.names[generic.name] = Slow(generic)
    return t


SAMPLES = [
    date(2020, 2, 29),
    b"\x00bytes\xff",
    Colour.RED,
    Planet.EARTH,
    Perm.W | Perm.X,
    Money(Decimal("3.50"), "USD"),
    Line("s", Money(Decimal("1"), "EUR"), ("t",)),
    {"nested": [Colour.GREEN, {"when": date(2000, 1, 1), "raw": b"r"}]},
]


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
def test_python_transcodings_write_and_read_exactly_what_rust_does(value: Any) -> None:
    native, python = JSONTranscoder(), python_transcoder()
    data = encode_json(value, native)
    assert encode_json(value, python) == data
    assert decode_json(data, python) == decode_json(data, native)


def test_values_of_every_new_type_nest_inside_events_with_the_old_ones() -> None:
    value = {
        "id": UUID(int=7),
        "at": datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "parcels": [Money(Decimal("0.01"), "JPY"), Colour.RED, date(1999, 12, 31)],
        "blob": b"\x00" * 100,
    }
    assert round_trip(value) == value
