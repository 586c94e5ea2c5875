"""Mistakes users make with the mapper: each error names the event (topic,
originator id and version) and says what to do; no override, mutation or
stored class_version is silently ignored."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import pytest

from esox import Aggregate, Application, event
from esox._core import Mapper, StoredEvent, encode_json
from esox.domain.events import ProgrammingError
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor, ZstdCompressor
from esox.persistence.errors import (
    MapperDeserialisationError,
    PersistenceError,
    TranscodingError,
)
from esox.persistence.transcoding import (
    DecimalAsStr,
    JSONTranscoder,
    Transcoding,
    UUIDAsHex,
)

KEY = base64.b64encode(bytes(range(32))).decode()
ID = UUID(int=42)


@dataclass(frozen=True)
class Noted:
    originator_id: UUID
    originator_version: int
    value: Any


@dataclass(frozen=True)
class Renamed:
    originator_id: UUID
    originator_version: int
    name: str
    class_version: ClassVar[int] = 3

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["name"] = state.pop("title", "")

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        pass


@dataclass(frozen=True)
class Upgraded:
    originator_id: UUID
    originator_version: int
    size: int
    class_version: ClassVar[int] = 2


NOTED = f"{__name__}:Noted"
RENAMED = f"{__name__}:Renamed"


def names_the_event(message: str, topic: str) -> None:
    assert str(ID) in message
    assert "originator_version 9" in message
    assert topic in message


# 6. A JSONTranscoder subclass's encode and decode are honoured.


class Bracketing(JSONTranscoder):
    """Wraps each state: a format the native codec knows nothing of."""

    decoded = 0

    def encode(self, obj: Any) -> bytes:
        return b"[" + super().encode(obj) + b"]"

    def decode(self, data: bytes) -> Any:
        Bracketing.decoded += 1
        assert data[:1] == b"[" and data[-1:] == b"]"
        return super().decode(data[1:-1])


def test_a_transcoder_subclass_overriding_encode_and_decode_is_honoured() -> None:
    mapper = Mapper(Bracketing())
    stored = mapper.to_stored_event(Noted(ID, 1, {"a": Decimal("1.5")}))
    assert stored.state == b'[{"value":{"a":{"_type_":"decimal_str","_data_":"1.5"}}}]'
    before = Bracketing.decoded
    assert mapper.to_domain_event(stored).value == {"a": Decimal("1.5")}
    assert Bracketing.decoded == before + 1
    assert mapper.encode({"x": 1}) == b'[{"x":1}]'


def test_a_subclass_that_only_registers_transcodings_stays_byte_identical() -> None:
    class Registering(JSONTranscoder):
        def __init__(self) -> None:
            super().__init__()
            self.register(MoneyAsDict())

    stored = Mapper(Registering()).to_stored_event(Noted(ID, 1, Money(1)))
    assert stored.state == b'{"value":{"_type_":"money","_data_":{"cents":1}}}'


# 9. A dict changed while it is encoded is an error, never silently written.


@dataclass(frozen=True)
class Money:
    cents: int


class MoneyAsDict(Transcoding):
    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, Any]:
        return {"cents": obj.cents}

    def decode(self, data: dict[str, Any]) -> Money:
        return Money(data["cents"])


class Meddling(Transcoding):
    """Deletes one key of ``target`` and adds another while encoding."""

    name = "meddle"

    def __init__(self, target: dict[str, Any]) -> None:
        self.target = target

    @property
    def type(self) -> type:  # type: ignore[override]
        return Meddle

    def encode(self, obj: Meddle) -> str:
        self.target.pop("b", None)
        self.target["z"] = 1
        return "m"

    def decode(self, data: str) -> Meddle:
        return Meddle()


class Meddle:
    pass


def test_an_event_dict_changed_while_encoding_is_an_error() -> None:
    state: dict[str, Any] = {}
    transcoder = JSONTranscoder()
    transcoder.register(Meddling(state))
    noted = Noted(ID, 9, {})
    object.__setattr__(noted, "value", Meddle())
    object.__setattr__(noted, "b", 2)
    state_of_event = noted.__dict__
    transcoding = transcoder.names["meddle"]
    assert isinstance(transcoding, Meddling)
    transcoding.target = state_of_event
    with pytest.raises(
        PersistenceError, match="changed while it was being encoded"
    ) as info:
        Mapper(transcoder).to_stored_event(noted)
    names_the_event(str(info.value), NOTED)


def test_a_nested_dict_changed_while_encoding_is_an_error() -> None:
    inner: dict[str, Any] = {"a": Meddle(), "b": 2, "c": 3}
    transcoder = JSONTranscoder()
    transcoder.register(Meddling(inner))
    with pytest.raises(PersistenceError, match="'value': the dict was changed"):
        Mapper(transcoder).to_stored_event(Noted(ID, 9, inner))
    inner2: dict[str, Any] = {"a": Meddle(), "b": 2}
    transcoder.register(Meddling(inner2))
    with pytest.raises(PersistenceError, match="the dict was changed"):
        encode_json(inner2, transcoder)


# 15. Errors that name the event and the likely fix.


def test_a_stored_class_version_that_is_not_an_int_names_the_event() -> None:
    bad = StoredEvent(ID, 9, RENAMED, b'{"name":"x","class_version":"two"}')
    with pytest.raises(
        MapperDeserialisationError, match="class_version 'two' is not an int"
    ) as info:
        Mapper(JSONTranscoder()).to_domain_event(bad)
    names_the_event(str(info.value), RENAMED)


def test_a_stored_class_version_newer_than_the_class_is_refused() -> None:
    newer = StoredEvent(ID, 9, RENAMED, b'{"name":"x","class_version":5}')
    with pytest.raises(MapperDeserialisationError, match="class_version 5") as info:
        Mapper(JSONTranscoder()).to_domain_event(newer)
    assert "this Renamed has class_version 3" in str(info.value)
    names_the_event(str(info.value), RENAMED)
    ok = StoredEvent(ID, 9, RENAMED, b'{"title":"x"}')
    assert Mapper(JSONTranscoder()).to_domain_event(ok).name == "x"


def test_a_missing_upcaster_says_which_to_add() -> None:
    old = StoredEvent(ID, 9, f"{__name__}:Upgraded", b'{"size":1}')
    with pytest.raises(
        MapperDeserialisationError, match="add a static method upcast_v1_v2"
    ) as info:
        Mapper(JSONTranscoder()).to_domain_event(old)
    names_the_event(str(info.value), f"{__name__}:Upgraded")


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name


class Dogs(Application[UUID]):
    pass


@pytest.mark.parametrize("persistence", ["esox.memory", "esox.sqlite"])
def test_a_parameter_added_without_an_upcaster_says_how_to_upcast(
    persistence: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"PERSISTENCE_MODULE": persistence, "SQLITE_DBNAME": str(tmp_path / "d.db")}
    app = Dogs(env)
    dog = Dog("Fido")
    app.save(dog)

    def __init__(self: Dog, name: str, age: int) -> None:
        self.name = name

    monkeypatch.setattr(Dog, "_init_func_", __init__)
    with pytest.raises(ProgrammingError) as info:
        app.repository.get(dog.id)  # replayed in Rust
    created = app.events.get(dog.id)[0]
    with pytest.raises(ProgrammingError) as in_python:
        created.mutate(None)
    for error in (info.value, in_python.value):
        message = str(error)
        assert "has no 'age'" in message
        assert str(dog.id) in message
        assert "upcast_v1_v2(state)" in message
        assert "Dog.Registered" in message


def test_a_lone_surrogate_names_the_event_and_path() -> None:
    with pytest.raises(PersistenceError, match="lone surrogate") as info:
        Mapper(JSONTranscoder()).to_stored_event(Noted(ID, 9, {"note": "a\ud800b"}))
    message = str(info.value)
    assert "'value.note'" in message
    names_the_event(message, NOTED)


@pytest.mark.parametrize(
    ("writer", "hint"),
    [
        (Mapper(JSONTranscoder(), compressor=ZlibCompressor()), "set COMPRESSOR_TOPIC"),
        (Mapper(JSONTranscoder(), compressor=ZstdCompressor()), "set COMPRESSOR_TOPIC"),
        (
            Mapper(JSONTranscoder(), cipher=AESCipher({"CIPHER_KEY": KEY})),
            "set CIPHER_KEY",
        ),
        (
            Mapper(
                JSONTranscoder(),
                compressor=ZlibCompressor(),
                cipher=AESCipher({"CIPHER_KEY": KEY}),
            ),
            "set CIPHER_KEY",
        ),
    ],
)
def test_reading_sealed_rows_without_the_setting_says_which_to_set(
    writer: Mapper, hint: str
) -> None:
    written = writer.to_stored_event(Noted(ID, 9, "x"))
    with pytest.raises(MapperDeserialisationError, match=hint) as info:
        Mapper(JSONTranscoder()).to_domain_event(written)
    names_the_event(str(info.value), NOTED)


def test_encrypted_rows_read_with_only_a_compressor_say_set_cipher_key() -> None:
    writer = Mapper(JSONTranscoder(), cipher=AESCipher({"CIPHER_KEY": KEY}))
    written = writer.to_stored_event(Noted(ID, 9, "x"))
    reader = Mapper(JSONTranscoder(), compressor=ZlibCompressor())
    with pytest.raises(
        MapperDeserialisationError, match="looks encrypted: set CIPHER_KEY"
    ):
        reader.to_domain_event(written)


def test_plain_rows_read_with_a_cipher_say_they_are_not_encrypted() -> None:
    plain = StoredEvent(ID, 9, NOTED, b'{"value":"x"}')
    reader = Mapper(JSONTranscoder(), cipher=AESCipher({"CIPHER_KEY": KEY}))
    with pytest.raises(MapperDeserialisationError, match="looks like JSON") as info:
        reader.to_domain_event(plain)
    names_the_event(str(info.value), NOTED)
    compressed = StoredEvent(ID, 9, NOTED, zlib.compress(b'{"value":"x"}'))
    with pytest.raises(MapperDeserialisationError, match="uncompressed"):
        Mapper(JSONTranscoder(), compressor=ZlibCompressor()).to_domain_event(
            StoredEvent(ID, 9, NOTED, b'{"value":"x"}')
        )
    assert Mapper(JSONTranscoder(), compressor=ZlibCompressor()).to_domain_event(
        compressed
    )


class MoneyAsDecimal(Transcoding):
    type = Money
    name = "decimal_str"

    def encode(self, obj: Money) -> str:
        return str(obj.cents)

    def decode(self, data: str) -> Money:
        return Money(int(data))


class DateAsOrdinal(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> int:
        return obj.toordinal()

    def decode(self, data: int) -> date:
        return date.fromordinal(data)


@pytest.mark.parametrize("name", ["decimal_str", "uuid_hex", "datetime_iso", "enum"])
def test_a_transcoding_under_a_built_in_name_is_refused(name: str) -> None:
    transcoding = MoneyAsDecimal()
    transcoding.name = name
    with pytest.raises(TranscodingError, match=f"under the name '{name}'"):
        JSONTranscoder().register(transcoding)


def test_built_in_names_may_be_registered_again_for_their_own_type() -> None:
    import eventsourcing.persistence as es

    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DecimalAsStr())
    transcoder.register(es.UUIDAsHex())  # type: ignore[arg-type]
    transcoder.register(DateAsOrdinal())  # same type, another format: allowed
    with pytest.raises(TranscodingError, match="'money'"):
        transcoder.register(MoneyAsDecimal())
