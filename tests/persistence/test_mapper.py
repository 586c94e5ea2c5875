"""esox._core.Mapper and the JSON codec: round trips, byte-compatibility with
eventsourcing 9.x, and errors that name what failed."""

from __future__ import annotations

import json
import math
import sys
import time
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any, ClassVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import eventsourcing.persistence as es
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esox._core import Mapper, StoredEvent, decode_json, encode_json
from esox.persistence.errors import (
    MapperDeserialisationError,
    PersistenceError,
    TranscodingNotRegisteredError,
)
from esox.persistence.transcoding import JSONTranscoder, Transcoder, Transcoding
from tests.values import Money, MoneyAsDict, assert_round_trips_in_threads

# Events: anything with originator_id and originator_version in its __dict__.


@dataclass(frozen=True)
class Happened:
    originator_id: UUID
    originator_version: int
    value: Any


@dataclass(frozen=True)
class Named:
    originator_id: str
    originator_version: int
    name: str
    originator_id_type: ClassVar[type] = str


@dataclass(frozen=True)
class Moved:
    originator_id: UUID
    originator_version: int
    to: str
    speed: int
    class_version: ClassVar[int] = 3

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["to"] = state.pop("where")

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["speed"] = 0


class Thing:
    pass


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


def transcoder() -> JSONTranscoder:
    t = JSONTranscoder()
    t.register(MoneyAsDict())
    t.register(DateAsISO())
    return t


def es_transcoder() -> es.JSONTranscoder:
    t = es.JSONTranscoder()
    for transcoding in (es.UUIDAsHex(), es.DecimalAsStr(), es.DatetimeAsISO()):
        t.register(transcoding)
    t.register(MoneyAsDict())
    t.register(DateAsISO())
    return t


def same(a: Any, b: Any) -> bool:
    """Equal, also for NaN and the sign of zero; tuples compare as lists."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return str(a) == str(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def round_trip(value: Any) -> Any:
    mapper = Mapper(transcoder())
    stored = mapper.to_stored_event(Happened(uuid4(), 1, value))
    event = mapper.to_domain_event(stored)
    assert isinstance(event, Happened)
    return event.value


VALUES = [
    "",
    "plain",
    "héllo ☃ 😀 \u2028\u2029",
    'quote " backslash \\ slash /',
    "\n\r\t\b\f",
    "\x00\x01\x1f\x7f",
    "x" * 10_000,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**63,
    2**64 - 1,
    2**64,
    -(2**64),
    10**100,
    -(10**100),
    0.0,
    -0.0,
    1.5,
    0.1,
    1e15,
    1e16,
    1e300,
    -1e-300,
    5e-324,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
    None,
    [],
    {},
    [1, [2, [3, []]], {"a": {"b": None}}],
    {"ключ": "значение", "": 0},
    UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("1.10"),
    Decimal("-0"),
    Decimal("1E+3"),
    Decimal("NaN"),
    datetime(2024, 2, 29, 7, 5, 9, 42, tzinfo=UTC),
    datetime(2024, 2, 29, 7, 5, 9),
    datetime(1, 1, 1),
    datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2024, 1, 1, tzinfo=timezone(-timedelta(hours=8))),
    Money(Decimal("9.99"), "EUR"),
    date(2024, 3, 1),
    [Money(Decimal("1"), "GBP"), {"when": date(2000, 1, 1)}],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_supported_type_round_trips(value: Any) -> None:
    assert same(round_trip(value), value)


def test_tuples_are_written_as_arrays_and_read_as_lists() -> None:
    assert round_trip((1, (2, "three"))) == [1, [2, "three"]]


def test_aware_datetimes_keep_their_offset_and_utc_is_the_utc_singleton() -> None:
    utc = round_trip(datetime(2024, 1, 1, tzinfo=UTC))
    assert utc.tzinfo is UTC
    london = datetime(2024, 7, 1, 12, tzinfo=ZoneInfo("Europe/London"))
    decoded = round_trip(london)
    assert decoded == london
    assert decoded.utcoffset() == timedelta(hours=1)


def test_decoded_uuid_is_a_proper_uuid() -> None:
    value = uuid4()
    decoded = round_trip(value)
    assert type(decoded) is UUID
    assert decoded == value
    assert hash(decoded) == hash(value)
    assert decoded.is_safe == value.is_safe
    assert str(decoded) == str(value)


def test_events_are_built_without_init_and_keep_attribute_order() -> None:
    mapper = Mapper(transcoder())
    event = Happened(uuid4(), 7, {"b": 1, "a": 2})
    decoded = mapper.to_domain_event(mapper.to_stored_event(event))
    assert decoded == event
    assert list(decoded.__dict__) == ["value", "originator_id", "originator_version"]


def test_stored_event_has_the_topic_id_version_and_compact_state() -> None:
    mapper = Mapper(transcoder())
    originator_id = uuid4()
    stored = mapper.to_stored_event(Happened(originator_id, 3, ["a", 1]))
    assert stored.originator_id is originator_id
    assert stored.originator_version == 3
    assert stored.topic == "tests.persistence.test_mapper:Happened"
    assert stored.state == b'{"value":["a",1]}'


def test_batches_convert_mixed_classes_and_any_iterable() -> None:
    mapper = Mapper(transcoder())
    events = [Happened(uuid4(), 1, i) for i in range(3)] + [Named("n-1", 1, "x")]
    stored = mapper.to_stored_events(iter(events))
    assert [s.topic for s in stored][-2:] == [
        "tests.persistence.test_mapper:Happened",
        "tests.persistence.test_mapper:Named",
    ]
    assert mapper.to_domain_events(tuple(stored)) == events
    assert mapper.to_stored_events([]) == []


def test_str_ids_stay_str_only_when_the_class_says_so() -> None:
    mapper = Mapper(transcoder())
    named = mapper.to_domain_event(
        StoredEvent("n-1", 1, "tests.persistence.test_mapper:Named", b'{"name":"x"}')
    )
    assert named.originator_id == "n-1"
    hex_id = uuid4().hex
    happened = mapper.to_domain_event(
        StoredEvent(hex_id, 1, "tests.persistence.test_mapper:Happened", b'{"value":1}')
    )
    assert happened.originator_id == UUID(hex_id)


def test_class_version_is_written_last_and_old_events_are_upcast() -> None:
    mapper = Mapper(transcoder())
    event = Moved(uuid4(), 1, "north", 5)
    stored = mapper.to_stored_event(event)
    assert stored.state == b'{"to":"north","speed":5,"class_version":3}'
    assert mapper.to_domain_event(stored) == event
    v1 = StoredEvent(event.originator_id, 1, stored.topic, b'{"where":"south"}')
    assert mapper.to_domain_event(v1) == Moved(event.originator_id, 1, "south", 0)
    v2 = StoredEvent(
        event.originator_id, 1, stored.topic, b'{"to":"w","class_version":2}'
    )
    assert mapper.to_domain_event(v2) == Moved(event.originator_id, 1, "w", 0)


class ThingAsNothing(Transcoding):
    type = Thing
    name = "thing"

    def encode(self, obj: Thing) -> None:
        return None

    def decode(self, data: None) -> Thing:
        return Thing()


def test_registrations_after_construction_count() -> None:
    t = JSONTranscoder()
    mapper = Mapper(t)
    with pytest.raises(TranscodingNotRegisteredError):
        mapper.encode(Thing())
    t.register(ThingAsNothing())
    assert isinstance(mapper.decode(mapper.encode(Thing())), Thing)


class UUIDAsStr(Transcoding):
    type = UUID
    name = "uuid_str"

    def encode(self, obj: UUID) -> str:
        return str(obj)

    def decode(self, data: str) -> UUID:
        return UUID(data)


def test_another_transcoding_registered_for_a_native_type_is_used() -> None:
    t = JSONTranscoder()
    t.register(UUIDAsStr())
    value = UUID(int=1)
    data = encode_json(value, t)
    assert (
        data == b'{"_type_":"uuid_str","_data_":"00000000-0000-0000-0000-000000000001"}'
    )
    assert decode_json(data, t) == value
    # Data stored under the old name still decodes.
    assert (
        decode_json(b'{"_type_":"uuid_hex","_data_":"' + b"0" * 31 + b'1"}', t) == value
    )


class Colour(Enum):
    RED = "red"


class Size(IntEnum):
    BIG = 3


class Word(str):
    pass


def test_subclasses_of_json_types_are_written_as_json_writes_them() -> None:
    value = {"size": Size.BIG, "word": Word("hi"), Word("k"): 1}
    assert (
        encode_json(value, JSONTranscoder())
        == json.dumps(value, separators=(",", ":")).encode()
    )


def test_non_str_keys_are_converted_as_json_converts_them() -> None:
    value = {3: "a", 2.5: "b", True: "c", None: "d", float("nan"): "e"}
    assert (
        encode_json(value, JSONTranscoder())
        == json.dumps(value, separators=(",", ":")).encode()
    )


def test_a_python_subclass_of_mapper_works() -> None:
    class Audited(Mapper):
        def to_stored_event(self, domain_event: object) -> StoredEvent:
            self.count = getattr(self, "count", 0) + 1
            return super().to_stored_event(domain_event)

    mapper = Audited(transcoder())
    mapper.to_stored_event(Happened(uuid4(), 1, 1))
    assert mapper.count == 1
    assert isinstance(mapper.transcoder, JSONTranscoder)


class JSONModuleTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return json.dumps(obj, sort_keys=True).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


def test_any_other_transcoder_is_called_through_its_methods() -> None:
    mapper = Mapper(JSONModuleTranscoder())
    event = Moved(uuid4(), 1, "up", 2)
    stored = mapper.to_stored_event(event)
    assert stored.state == b'{"class_version": 3, "speed": 2, "to": "up"}'
    assert mapper.to_domain_event(stored) == event


class ReversingCipher:
    def encrypt(self, data: bytes) -> bytes:
        return data[::-1]

    def decrypt(self, data: bytes) -> bytes:
        return data[::-1]


class ZlibCompressor:
    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes) -> bytes:
        return zlib.decompress(data)


def test_state_is_compressed_then_encrypted_and_read_back_in_reverse() -> None:
    cipher, compressor = ReversingCipher(), ZlibCompressor()
    mapper = Mapper(transcoder(), compressor=compressor, cipher=cipher)
    assert mapper.cipher is cipher
    assert mapper.compressor is compressor
    event = Happened(uuid4(), 1, "x" * 100)
    stored = mapper.to_stored_event(event)
    assert stored.state == zlib.compress(b'{"value":"' + b"x" * 100 + b'"}')[::-1]
    assert mapper.to_domain_event(stored) == event


def test_decoded_attribute_names_are_interned() -> None:
    mapper = Mapper(transcoder())
    event = mapper.to_domain_event(
        mapper.to_stored_event(Happened(uuid4(), 1, {"k": 1}))
    )
    assert all(sys.intern(name) is name for name in event.__dict__)
    assert all(sys.intern(name) is name for name in event.value)


@dataclass(frozen=True, slots=True)
class Slotted:
    originator_id: UUID
    originator_version: int


def test_an_event_without_a_dict_is_refused_with_a_clear_error() -> None:
    with pytest.raises(
        PersistenceError, match=r"Slotted event: cannot read its __dict__"
    ):
        Mapper(transcoder()).to_stored_event(Slotted(uuid4(), 1))


class AbstractEvent(ABC):
    originator_id: UUID

    @abstractmethod
    def apply(self) -> None: ...


def test_a_topic_naming_an_abstract_class_is_refused() -> None:
    with pytest.raises(
        MapperDeserialisationError, match=r"cannot be created with object\.__new__"
    ):
        Mapper(transcoder()).to_domain_event(
            stored(b"{}", topic="tests.persistence.test_mapper:AbstractEvent")
        )


class SlowDateAsISO(DateAsISO):
    """Releases the GIL in the middle of a batch."""

    def decode(self, data: str) -> date:
        time.sleep(0.0001)
        return super().decode(data)

    def encode(self, obj: date) -> str:
        time.sleep(0.0001)
        return super().encode(obj)


def test_one_mapper_is_safe_to_share_between_threads() -> None:
    t = JSONTranscoder()
    t.register(SlowDateAsISO())
    mapper = Mapper(t)
    events = [
        Happened(uuid4(), i, {"on": date(2024, 1, 1 + i % 28), "n": i})
        for i in range(50)
    ]
    assert_round_trips_in_threads(mapper, events, threads=4, times=5, timeout=60)


# Byte-compatibility with eventsourcing 9.x.

COMPATIBLE_STATES = [
    {"a": 1, "b": "two", "c": [3.5, None, True], "d": {"e": (1, 2)}},
    {"text": 'héllo "☃" \\ \n\t\x00\x1f 😀', "big": 2**70, "neg": -(2**70)},
    {"floats": [0.1, -0.0, 1e16, 1e-5, 123456.789, float("inf"), float("-inf")]},
    {"id": uuid4(), "amount": Decimal("-12.3400"), "money": Money(Decimal("5"), "USD")},
    {"utc": datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)},
    {"naive": datetime(2024, 5, 6), "day": date(2024, 5, 6)},
    {"other_tz": datetime(2024, 5, 6, tzinfo=timezone(timedelta(hours=-3)))},
    {"nested": [{"_type_": "a"}, {"_type_": "a", "_data_": 1, "x": 2}]},
    {},
]


@pytest.mark.parametrize("state", COMPATIBLE_STATES, ids=repr)
def test_json_is_byte_identical_to_eventsourcing_and_each_reads_the_other(
    state: dict[str, Any],
) -> None:
    ours, theirs = transcoder(), es_transcoder()
    data = ours.encode(state)
    assert data == theirs.encode(state)
    assert same(ours.decode(data), state)
    assert same(theirs.decode(data), state)


def test_stored_events_are_identical_to_eventsourcing_and_each_reads_the_other() -> (
    None
):
    ours = Mapper(transcoder())
    theirs = es.Mapper(es_transcoder())
    events = [
        Happened(
            uuid4(), 1, {"money": Money(Decimal("1.5"), "EUR"), "at": datetime.now()}
        ),
        Moved(uuid4(), 2, "east", 9),
    ]
    for event in events:
        mine, other = ours.to_stored_event(event), theirs.to_stored_event(event)
        assert (mine.originator_id, mine.originator_version) == (
            other.originator_id,
            other.originator_version,
        )
        assert (mine.topic, mine.state) == (other.topic, other.state)
        assert ours.to_domain_event(other) == event
        assert theirs.to_domain_event(mine) == event


# Errors name what failed.


def test_unregistered_type_names_the_type_the_attribute_path_and_the_event() -> None:
    mapper = Mapper(transcoder())
    originator_id = uuid4()
    event = Happened(originator_id, 4, {"owner": {"address": [1, 2, Thing()]}})
    with pytest.raises(TranscodingNotRegisteredError) as info:
        mapper.to_stored_event(event)
    message = str(info.value)
    assert (
        "event attribute 'value.owner.address[2]': Object of type "
        "<class 'tests.persistence.test_mapper.Thing'> is not serializable. "
        "Please define and register a custom transcoding for this type."
    ) in message
    assert "tests.persistence.test_mapper:Happened" in message
    assert str(originator_id) in message
    assert "originator_version 4" in message
    assert isinstance(info.value, TypeError)


def test_encoding_a_value_names_its_path() -> None:
    with pytest.raises(TranscodingNotRegisteredError, match=r"value at 'a\[1\]'"):
        encode_json({"a": [1, Thing()]}, JSONTranscoder())
    with pytest.raises(TranscodingNotRegisteredError, match="not tuple"):
        encode_json({(1, 2): 3}, JSONTranscoder())


def test_circular_references_raise_instead_of_overflowing() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(PersistenceError, match="nested more than 512 levels"):
        Mapper(transcoder()).to_stored_event(Happened(uuid4(), 1, loop))


def stored(
    state: bytes, topic: str = "tests.persistence.test_mapper:Happened"
) -> StoredEvent:
    return StoredEvent(UUID(int=42), 9, topic, state)


def assert_names_the_stored_event(
    message: str, topic: str = "tests.persistence.test_mapper:Happened"
) -> None:
    assert str(UUID(int=42)) in message
    assert "originator_version 9" in message
    assert f"topic '{topic}'" in message


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        (b'{"value":1,}', "invalid JSON at byte 11: expected a string key"),
        (b'{"value":[1 2]}', "invalid JSON at byte 12: expected ',' or ']'"),
        (b'{"value":"abc', "invalid JSON at byte 13: unterminated string"),
        (b'{"value":01}', "invalid JSON at byte 10: expected ',' or '}'"),
        (b'{"value":"\x01"}', "invalid JSON at byte 10: control character in string"),
        (b'{"value":"\\x"}', "invalid JSON at byte 10: invalid escape in string"),
        (
            b'{"value":1} x',
            "invalid JSON at byte 12: unexpected data after the JSON value",
        ),
        (b"", "invalid JSON at byte 0: unexpected end of input"),
        (b'{"value":"\xff"}', "invalid UTF-8 at byte 10"),
        (b"[" * 10_000, "JSON nested more than 512 levels deep"),
        (b"[1]", "state is a <class 'list'>, not a JSON object"),
    ],
)
def test_corrupt_state_raises_deserialisation_error_naming_the_event(
    state: bytes, problem: str
) -> None:
    with pytest.raises(MapperDeserialisationError) as info:
        Mapper(transcoder()).to_domain_event(stored(state))
    assert problem in str(info.value)
    assert_names_the_stored_event(str(info.value))


def test_unknown_type_name_raises_not_registered_naming_it_and_the_event() -> None:
    with pytest.raises(TranscodingNotRegisteredError) as info:
        Mapper(transcoder()).to_domain_event(
            stored(b'{"value":{"_type_":"nope","_data_":1}}')
        )
    assert "'nope'" in str(info.value)
    assert_names_the_stored_event(str(info.value))


def test_a_failing_transcoding_raises_deserialisation_error_with_its_cause() -> None:
    state = b'{"value":{"_type_":"datetime_iso","_data_":"2024-13-01T00:00:00"}}'
    with pytest.raises(MapperDeserialisationError) as info:
        Mapper(transcoder()).to_domain_event(stored(state))
    assert "transcoding 'datetime_iso'" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
    assert_names_the_stored_event(str(info.value))


def test_unknown_topic_raises_deserialisation_error_naming_the_topic() -> None:
    with pytest.raises(MapperDeserialisationError) as info:
        Mapper(transcoder()).to_domain_event(
            stored(b"{}", topic="tests.persistence.test_mapper:Nope")
        )
    assert "could not resolve its topic" in str(info.value)
    assert_names_the_stored_event(
        str(info.value), topic="tests.persistence.test_mapper:Nope"
    )
    assert info.value.__cause__ is not None


def test_failing_decryption_raises_deserialisation_error() -> None:
    class BadCipher(ReversingCipher):
        def decrypt(self, data: bytes) -> bytes:
            raise ValueError("bad tag")

    with pytest.raises(
        MapperDeserialisationError, match="could not decrypt state: ValueError: bad tag"
    ):
        Mapper(transcoder(), cipher=BadCipher()).to_domain_event(stored(b"{}"))


# Properties over generated JSON-like values.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_encoding_matches_python_json_and_decoding_inverts_it(value: Any) -> None:
    t = JSONTranscoder()
    data = encode_json(value, t)
    assert data == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert same(decode_json(data, t), value)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_decoding_python_json_with_whitespace_and_escapes_matches_json_loads(
    value: Any, ensure_ascii: bool
) -> None:
    text = json.dumps(value, indent=1, ensure_ascii=ensure_ascii)
    assert same(decode_json(text.encode(), JSONTranscoder()), json.loads(text))


@settings(max_examples=300, deadline=None)
@given(st.floats())
def test_floats_are_written_as_python_repr(value: float) -> None:
    assert encode_json(value, JSONTranscoder()) == json.dumps(value).encode()


def test_lone_surrogate_escapes_decode_as_json_does() -> None:
    data = b'["\\ud800", "\\udc00x", "\\ud83d\\ude00"]'
    assert decode_json(data, JSONTranscoder()) == json.loads(data)
