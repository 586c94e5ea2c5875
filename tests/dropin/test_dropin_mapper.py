"""The drop-in mapper behaves as eventsourcing's Mapper: same bytes, same events,
same errors; the Rust codec passes eventsourcing's transcoder test case."""

from __future__ import annotations

import json
import zlib
from collections import OrderedDict, namedtuple
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from typing import Any
from unittest import skip
from uuid import UUID, uuid4

import eventsourcing.persistence as es
import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.domain import Aggregate, DomainEvent, Snapshot
from eventsourcing.domain import event as es_event
from eventsourcing.tests import persistence as es_tests
from eventsourcing.utils import Environment, TopicError, get_topic
from eventsourcing.utils import register_topic as es_register_topic

import esox.utils
from esox import _core
from esox.dropin.boundary import EsoxError, reraise
from esox.dropin.mapper import Mapper


@dataclass(frozen=True)
class Happened(DomainEvent):
    value: Any


class Upcasted(DomainEvent):
    class_version = 2
    value: Any

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["value"] = ("upcast", state.get("value"))


class Color(Enum):
    RED = "red"


class Size(IntEnum):
    LARGE = 3


class Flavour(StrEnum):
    SWEET = "sweet"


Point = namedtuple("Point", "x y")


class Unregistered:
    pass


def transcoder() -> es.JSONTranscoder:
    t = es.JSONTranscoder()
    for transcoding in (
        es.UUIDAsHex(),
        es.DecimalAsStr(),
        es.DatetimeAsISO(),
        es_tests.CustomType1AsDict(),
        es_tests.CustomType2AsDict(),
    ):
        t.register(transcoding)
    return t


def mappers(**kwargs: Any) -> tuple[es.Mapper[Any], Mapper[Any]]:
    """eventsourcing's mapper and the drop-in mapper, configured alike."""
    return es.Mapper(transcoder(), **kwargs), Mapper(transcoder(), **kwargs)


VALUES: list[Any] = [
    "text",
    "🐈 哈哈 \u2028 \x00 \x1f \\ \" / '",
    0,
    -1,
    2**63,
    -(2**64),
    10**40,
    True,
    False,
    None,
    0.1,
    -0.0,
    1e100,
    1e-7,
    1.0,
    float("nan"),
    float("inf"),
    float("-inf"),
    {},
    [],
    (),
    {"a": {"b": [1, (2, 3)]}},
    [(), [()], {}],
    {1: "a", 2.5: "b", False: "c", None: "d", "e": 1},
    {"_type_": 1, "something": 2},
    {"_data_": 1, "_type_": 2, "more": 3},
    es_tests.MyStr("a"),
    es_tests.MyInt(3),
    es_tests.Mydict({"a": 1}),
    es_tests.MyList([1, "a"]),
    Size.LARGE,
    Flavour.SWEET,
    Point(1, 2),
    OrderedDict([("b", 1), ("a", 2)]),
    UUID("b2723fe2-c01a-40d2-875e-a3aac6a09ff5"),
    Decimal("1.10"),
    Decimal("-0E-8"),
    datetime(2024, 2, 29, 12, 30, 15, 123456),
    datetime(2024, 2, 29, 12, 30, 15, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    es_tests.CustomType2(es_tests.CustomType1(UUID(int=7))),
    {"deep": [{"k": es_tests.CustomType1(UUID(int=8))}]},
]


def event(value: Any, cls: type[Any] = Happened) -> Any:
    return cls(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=DomainEvent.create_timestamp(),
        value=value,
    )


def assert_same_state(state: dict[str, Any], expected: dict[str, Any]) -> None:
    assert list(state) == list(expected)
    for name, value in state.items():
        assert type(value) is type(expected[name])
        # NaN is not equal to itself; nor are objects without __eq__.
        assert (
            value == expected[name]
            or repr(value) == repr(expected[name])
            or (vars(value) == vars(expected[name]))
        )


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_writes_and_reads_what_eventsourcing_does(value: Any) -> None:
    es_mapper, dropin = mappers()
    assert dropin.is_native
    domain_event = event(value)
    expected = es_mapper.to_stored_event(domain_event)
    stored = dropin.to_stored_event(domain_event)
    assert type(stored) is es.StoredEvent
    assert stored == expected
    assert dropin.to_stored_records([domain_event]) == [
        _core.StoredEvent(*vars(expected).values())
    ]
    # Rust did it (not eventsourcing's code, which would take over on errors).
    assert dropin._rust is not None
    assert dropin._rust.to_stored_event(domain_event).state == expected.state
    decoded = es_mapper.to_domain_event(expected)
    for copy in (
        dropin.to_domain_event(expected),
        dropin.to_domain_events([expected])[0],
        dropin._rust.to_domain_event(_core.StoredEvent(*vars(expected).values())),
    ):
        assert type(copy) is Happened
        assert_same_state(vars(copy), vars(decoded))


@pytest.mark.parametrize(
    "options",
    [
        {"compressor": zlib},
        {"compressor": ZlibCompressor()},
        {"cipher": "aes"},
        {"compressor": zlib, "cipher": "aes"},
    ],
    ids=["zlib module", "ZlibCompressor", "AES", "zlib and AES"],
)
def test_compressed_and_encrypted_states_open_in_either_mapper(
    options: dict[str, Any],
) -> None:
    if options.get("cipher") == "aes":
        env = Environment(env={"CIPHER_KEY": AESCipher.create_key(16)})
        options = {**options, "cipher": AESCipher(env)}
    es_mapper, dropin = mappers(**options)
    assert dropin.is_native
    domain_event = event({"a": [1, 2], "b": Decimal("3.14")})
    for writer, reader in ((es_mapper, dropin), (dropin, es_mapper)):
        stored = writer.to_stored_event(domain_event)
        copy = reader.to_domain_event(stored)
        assert vars(copy) == vars(es_mapper.to_domain_event(stored))
        assert copy.value == {"a": [1, 2], "b": Decimal("3.14")}
    # esox's own zlib and AES run in Rust: same formats (not always the same
    # zlib bytes; AES nonces are random anyway).
    assert dropin._rust is not None
    for used in (dropin._rust.compressor, dropin._rust.cipher):
        assert used is None or type(used).__module__.startswith("esox.")


def test_upcasts_as_eventsourcing_does() -> None:
    es_mapper, dropin = mappers()
    v1 = es.StoredEvent(
        uuid4(), 1, get_topic(Upcasted), b'{"timestamp":null,"value":1}'
    )
    assert vars(dropin.to_domain_event(v1)) == vars(es_mapper.to_domain_event(v1))
    v2 = dropin.to_stored_event(dropin.to_domain_event(v1))
    assert v2 == es_mapper.to_stored_event(es_mapper.to_domain_event(v1))
    assert b'"class_version":2' in v2.state


def test_unregistered_type_raises_eventsourcings_error() -> None:
    es_mapper, dropin = mappers()
    for value in (Unregistered(), {"a": [Unregistered()]}, date(2024, 1, 1), Color.RED):
        domain_event = event(value)
        with pytest.raises(es.TranscodingNotRegisteredError) as expected:
            es_mapper.to_stored_event(domain_event)
        with pytest.raises(es.TranscodingNotRegisteredError) as raised:
            dropin.to_stored_event(domain_event)
        assert raised.value.args == expected.value.args
        with pytest.raises(es.TranscodingNotRegisteredError):
            dropin.to_stored_records([event(1), domain_event])


def test_undecodable_states_raise_eventsourcings_error() -> None:
    es_mapper, dropin = mappers()
    topic = get_topic(Happened)
    for state in (
        b"not json",
        b'{"value":{"_type_":"no_such_transcoding","_data_":1},"timestamp":null}',
        zlib.compress(b"{}"),
    ):
        stored = es.StoredEvent(uuid4(), 1, topic, state)
        with pytest.raises(es.MapperDeserialisationError) as expected:
            es_mapper.to_domain_event(stored)
        with pytest.raises(es.MapperDeserialisationError) as raised:
            dropin.to_domain_event(stored)
        assert raised.value.args == expected.value.args
        with pytest.raises(es.MapperDeserialisationError):
            dropin.to_domain_events([stored])


def test_wrong_cipher_key_raises_eventsourcings_error() -> None:
    key1, key2 = AESCipher.create_key(16), AESCipher.create_key(16)
    writer = Mapper(
        transcoder(), cipher=AESCipher(Environment(env={"CIPHER_KEY": key1}))
    )
    reader = Mapper(
        transcoder(), cipher=AESCipher(Environment(env={"CIPHER_KEY": key2}))
    )
    stored = writer.to_stored_event(event(1))
    with pytest.raises(es.MapperDeserialisationError):
        reader.to_domain_event(stored)


def test_unresolvable_topic_raises_eventsourcings_error() -> None:
    es_mapper, dropin = mappers()
    stored = es.StoredEvent(uuid4(), 1, "no_such_module:Event", b"{}")
    with pytest.raises(TopicError) as expected:
        es_mapper.to_domain_event(stored)
    with pytest.raises(TopicError) as raised:
        dropin.to_domain_event(stored)
    assert raised.value.args == expected.value.args


class RenamedEvent(DomainEvent):
    value: Any


OLD_TOPIC = f"{__name__}:EventBeforeItWasRenamed"
es_register_topic(OLD_TOPIC, RenamedEvent)


def test_topics_registered_with_eventsourcing_are_honoured_in_rust() -> None:
    _, dropin = mappers()
    state = dropin.to_stored_event(event(5, RenamedEvent)).state
    stored = es.StoredEvent(uuid4(), 1, OLD_TOPIC, state)
    copy = dropin.to_domain_event(stored)
    assert type(copy) is RenamedEvent
    assert copy.value == 5
    assert dropin._agreed[OLD_TOPIC] is True
    assert esox.utils.resolve_topic(OLD_TOPIC) is RenamedEvent


@dataclass(frozen=True)
class StrIdEvent:
    """A plain dataclass event: eventsourcing reads the id annotation."""

    originator_id: str
    originator_version: int
    value: int


@dataclass(frozen=True)
class UUIDIdEvent:
    originator_id: UUID
    originator_version: int
    value: int


@pytest.mark.parametrize("cls", [StrIdEvent, UUIDIdEvent])
def test_originator_ids_are_converted_as_eventsourcing_converts_them(
    cls: type[Any],
) -> None:
    es_mapper, dropin = mappers()
    text_id = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    stored = es.StoredEvent(text_id, 1, get_topic(cls), b'{"value":1}')
    expected = es_mapper.to_domain_event(stored)
    for copy in (dropin.to_domain_event(stored), dropin.to_domain_events([stored])[0]):
        assert type(copy.originator_id) is type(expected.originator_id)
        assert copy == expected


class Kennel(Aggregate):
    @es_event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.dogs: list[str] = []

    @es_event("DogAdmitted")
    def admit(self, dog: str) -> None:
        self.dogs.append(dog)


def test_aggregate_events_and_snapshots_map_alike() -> None:
    es_mapper, dropin = mappers()
    kennel = Kennel("Barking Mad")
    kennel.admit("Fido")
    for domain_event in [*kennel.collect_events(), Snapshot.take(kennel)]:
        expected = es_mapper.to_stored_event(domain_event)
        assert dropin.to_stored_event(domain_event) == expected
        assert vars(dropin.to_domain_event(expected)) == vars(domain_event)


class SortedKeysTranscoder(es.JSONTranscoder):
    """Writes JSON differently: the drop-in leaves it to eventsourcing."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = json.JSONEncoder(
            default=self._encode_obj,
            separators=(",", ":"),
            ensure_ascii=False,
            sort_keys=True,
        )


class RegisteringTranscoder(es.JSONTranscoder):
    """Only registers transcodings: the Rust codec still does the work."""

    def __init__(self) -> None:
        super().__init__()
        self.register(es.UUIDAsHex())
        self.register(es.DecimalAsStr())
        self.register(es.DatetimeAsISO())


class UUIDAsText(es.Transcoding):
    type = UUID
    name = "uuid_hex"

    def encode(self, obj: UUID) -> str:
        return str(obj)

    def decode(self, data: str) -> UUID:
        return UUID(data)


def test_other_transcoders_are_left_to_eventsourcing() -> None:
    assert Mapper(RegisteringTranscoder()).is_native
    assert not Mapper(SortedKeysTranscoder()).is_native
    odd = transcoder()
    odd.register(UUIDAsText())
    assert not Mapper(odd).is_native

    for t in (SortedKeysTranscoder(), odd):
        for transcoding in (es.DecimalAsStr(), es.DatetimeAsISO()):
            t.register(transcoding)
        if UUID not in t.types:
            t.register(es.UUIDAsHex())
        domain_event = event({"z": UUID(int=1), "a": 1})
        expected = es.Mapper(t).to_stored_event(domain_event)
        assert Mapper(t).to_stored_event(domain_event) == expected


class RustJSONTranscoder(es.JSONTranscoder):
    """eventsourcing's JSONTranscoder with esox's Rust codec (test only)."""

    def encode(self, obj: Any) -> bytes:
        try:
            return _core.encode_json(obj, self)
        except EsoxError as e:
            reraise(e)

    def decode(self, data: bytes) -> Any:
        try:
            return _core.decode_json(data, self)
        except EsoxError as e:
            reraise(e)


class TestRustCodecWithTranscoderTestCase(es_tests.TranscoderTestCase):
    """eventsourcing's transcoder test case, on the Rust codec."""

    def construct_transcoder(self) -> es.Transcoder:
        t = RustJSONTranscoder()
        t.register(es_tests.CustomType1AsDict())
        t.register(es_tests.CustomType2AsDict())
        t.register(es.UUIDAsHex())
        return t

    # As eventsourcing's own JSONTranscoder (same reasons as its test module).
    @skip("JSONTranscoder converts tuples to lists")
    def test_tuple(self) -> None:
        pass

    @skip("JSONTranscoder converts tuples to lists")
    def test_mixed(self) -> None:
        pass

    @skip("JSONTranscoder converts dict subclasses to dict")
    def test_dict_subclass(self) -> None:
        pass

    @skip("JSONTranscoder converts list subclasses to list")
    def test_list_subclass(self) -> None:
        pass

    @skip("JSONTranscoder converts str subclasses to str")
    def test_str_subclass(self) -> None:
        pass

    @skip("JSONTranscoder converts int subclasses to int")
    def test_int_subclass(self) -> None:
        pass

    def test_custom_type_error(self) -> None:
        # esox's message names the path to the value instead; the drop-in
        # mapper raises eventsourcing's own message (tested above).
        with self.assertRaises(es.TranscodingNotRegisteredError):
            self.transcoder.encode(es_tests.MyClass())
        with self.assertRaises(es.TranscodingNotRegisteredError):
            self.transcoder.encode({"a": es_tests.MyClass()})
        with self.assertRaises(TypeError):
            self.transcoder.decode(b'{"_type_":"custom_type3_as_dict","_data_":""}')


class ExplicitTopicBase(DomainEvent):
    TOPIC = f"{__name__}:an-explicit-topic"
    value: Any


class InheritsExplicitTopic(ExplicitTopicBase):
    """eventsourcing reads TOPIC with getattr: this class has its base's."""


def test_explicit_topics_are_eventsourcings() -> None:
    es_mapper, dropin = mappers()
    domain_event = event(1, InheritsExplicitTopic)
    expected = es_mapper.to_stored_event(domain_event)
    assert expected.topic == ExplicitTopicBase.TOPIC
    assert dropin.to_stored_event(domain_event) == expected
    assert dropin.to_stored_records([domain_event])[0].topic == expected.topic
    assert type(dropin.to_domain_event(expected)) is InheritsExplicitTopic
