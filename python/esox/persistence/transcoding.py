"""Transcodings: how values of types that JSON lacks are stored and read back.

The JSON itself is written and parsed in Rust (``esox._core``); custom types
are stored as ``{"_type_": name, "_data_": data}``, byte-compatible with
eventsourcing's ``JSONTranscoder``.

Built in (and done natively while these transcodings are registered):

===========================  ================  ==================================
type                         ``_type_``        ``_data_``
===========================  ================  ==================================
``uuid.UUID``                ``uuid_hex``      32 hex digits (eventsourcing's)
``decimal.Decimal``          ``decimal_str``   ``str(d)`` (eventsourcing's)
``datetime.datetime``        ``datetime_iso``  ``isoformat()`` (eventsourcing's)
``datetime.date``            ``date_iso``      ``isoformat()``
``bytes``                    ``bytes_base64``  standard base64
any ``enum.Enum`` member     ``enum``          ``{"topic": T, "value": V}``
any frozen dataclass         ``dataclass``     ``{"topic": T, "fields": {...}}``
===========================  ================  ==================================

A transcoding registered for an exact type wins over the generic ``enum``
and ``dataclass`` ones. Members of ``IntEnum``, ``StrEnum`` and other
subclasses of ``int``/``str`` are written as their plain value, exactly as
eventsourcing (and ``json``) writes them; register ``EnumAsTopicValue(cls)``
to store such a class's members by topic instead.

eventsourcing has no built-in transcodings for the last four rows: to read
(and write) such data there, register esox's classes with its transcoder,
e.g. ``transcoder.register(DateAsISO())`` and, per class,
``transcoder.register(EnumAsTopicValue(Colour))`` or
``transcoder.register(DataclassAsTopicFields(Money))``.
"""

from __future__ import annotations

import binascii
import dataclasses
from abc import ABC, abstractmethod
from base64 import b64decode, b64encode
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from esox import _core
from esox.persistence.errors import TranscodingError
from esox.utils import get_topic, resolve_topic


class Transcoding(ABC):
    """How one type is encoded to JSON-able data, under a name, and back."""

    type: type
    name: str

    @abstractmethod
    def encode(self, obj: Any) -> Any:
        """Return JSON-able data that represents ``obj``."""

    @abstractmethod
    def decode(self, data: Any) -> Any:
        """Return the object that ``data`` represents."""


class Transcoder(ABC):
    """Converts objects to bytes and back."""

    @abstractmethod
    def encode(self, obj: Any) -> bytes:
        """Return ``obj`` as bytes."""

    @abstractmethod
    def decode(self, data: bytes) -> Any:
        """Return the object that ``data`` holds."""


class UUIDAsHex(Transcoding):
    """Stores a ``UUID`` as its 32 hex digits."""

    type = UUID
    name = "uuid_hex"

    def encode(self, obj: UUID) -> str:
        """Return the UUID's hex digits."""
        return obj.hex

    def decode(self, data: str) -> UUID:
        """Return the UUID with these hex digits."""
        return UUID(data)


class DecimalAsStr(Transcoding):
    """Stores a ``Decimal`` as its string."""

    type = Decimal
    name = "decimal_str"

    def encode(self, obj: Decimal) -> str:
        """Return ``str(obj)``."""
        return str(obj)

    def decode(self, data: str) -> Decimal:
        """Return the Decimal of this string."""
        return Decimal(data)


class DatetimeAsISO(Transcoding):
    """Stores a ``datetime`` as its ISO 8601 string."""

    type = datetime
    name = "datetime_iso"

    def encode(self, obj: datetime) -> str:
        """Return ``obj.isoformat()``."""
        return obj.isoformat()

    def decode(self, data: str) -> datetime:
        """Return ``datetime.fromisoformat(data)``."""
        return datetime.fromisoformat(data)


class DateAsISO(Transcoding):
    """Stores a ``date`` as its ISO 8601 string (``YYYY-MM-DD``)."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        """Return ``obj.isoformat()``."""
        return obj.isoformat()

    def decode(self, data: str) -> date:
        """Return ``date.fromisoformat(data)``."""
        return date.fromisoformat(data)


class BytesAsBase64(Transcoding):
    """Stores ``bytes`` as standard base64 text (with padding)."""

    type = bytes
    name = "bytes_base64"

    def encode(self, obj: bytes) -> str:
        """Return the base64 text of ``obj``."""
        return b64encode(obj).decode("ascii")

    def decode(self, data: str) -> bytes:
        """Return the bytes of base64 text (ValueError if it is not base64)."""
        try:
            return b64decode(data, validate=True)
        except binascii.Error as e:
            msg = f"invalid base64: {e}"
            raise ValueError(msg) from None


def _lists_as_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_lists_as_tuples(item) for item in value)
    return value


class EnumAsTopicValue(Transcoding):
    """Stores an enum member as its class's topic and its value.

    esox's ``JSONTranscoder`` uses it for members of every Enum class that
    has no transcoding of its own. With eventsourcing, register one per
    class: ``EnumAsTopicValue(Colour)``.
    """

    name = "enum"

    def __init__(self, type: type[Enum] = Enum) -> None:
        """Stand for members of ``type`` (any Enum when not given)."""
        self.type = type

    def encode(self, obj: Enum) -> dict[str, Any]:
        """Return ``{"topic": <class topic>, "value": obj.value}``."""
        return {"topic": get_topic(type(obj)), "value": obj.value}

    def decode(self, data: dict[str, Any]) -> Enum:
        """Return the member of the class named by ``topic`` with ``value``."""
        cls = resolve_topic(data["topic"])
        if not (isinstance(cls, type) and issubclass(cls, Enum)):
            msg = f"topic {data['topic']!r} does not name an Enum class"
            raise TypeError(msg)
        value = data["value"]
        try:
            return cls(value)
        except ValueError:
            if not isinstance(value, list):
                raise
            return cls(_lists_as_tuples(value))


class DataclassAsTopicFields(Transcoding):
    """Stores a frozen dataclass instance as its class's topic and its fields.

    Read back without calling ``__init__`` or ``__post_init__`` (as events
    are); fields missing from stored data take their defaults. esox's
    ``JSONTranscoder`` uses it for every frozen dataclass that has no
    transcoding of its own. With eventsourcing, register one per class:
    ``DataclassAsTopicFields(Money)``.
    """

    name = "dataclass"

    def __init__(self, type: type = object) -> None:
        """Stand for instances of ``type`` (any frozen dataclass when not given)."""
        self.type = type

    def encode(self, obj: Any) -> dict[str, Any]:
        """Return ``{"topic": <class topic>, "fields": {name: value, ...}}``."""
        return {
            "topic": get_topic(type(obj)),
            "fields": {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)},
        }

    def decode(self, data: dict[str, Any]) -> Any:
        """Return the instance of the class named by ``topic``, fields set."""
        cls = resolve_topic(data["topic"])
        params = getattr(cls, "__dataclass_params__", None)
        if not (isinstance(cls, type) and params is not None and params.frozen):
            msg = f"topic {data['topic']!r} does not name a frozen dataclass"
            raise TypeError(msg)
        stored: dict[str, Any] = dict(data["fields"])
        obj: Any = object.__new__(cls)
        for field in dataclasses.fields(cls):
            if field.name in stored:
                value = stored.pop(field.name)
            elif field.default is not dataclasses.MISSING:
                value = field.default
            elif field.default_factory is not dataclasses.MISSING:
                value = field.default_factory()
            else:
                msg = f"stored {data['topic']} has no field {field.name!r}"
                raise ValueError(msg)
            object.__setattr__(obj, field.name, value)
        if stored:
            msg = f"stored {data['topic']} has fields the class lacks: {sorted(stored)}"
            raise ValueError(msg)
        return obj


# The built-in ``_type_`` names and what each stands for: the type (for the
# first five) or the generic transcoding's class.
_BUILTIN_NAMES: dict[str, type] = {
    "uuid_hex": UUID,
    "decimal_str": Decimal,
    "datetime_iso": datetime,
    "date_iso": date,
    "bytes_base64": bytes,
    "enum": EnumAsTopicValue,
    "dataclass": DataclassAsTopicFields,
}


def _same_kind(transcoding: Transcoding, builtin: type) -> bool:
    """Whether ``transcoding`` may take a built-in name: it stands for the same."""
    if builtin in (EnumAsTopicValue, DataclassAsTopicFields):
        return isinstance(transcoding, builtin)
    return getattr(transcoding, "type", None) is builtin


class JSONTranscoder(Transcoder):
    """Compact UTF-8 JSON, extended with registered transcodings.

    UUID, Decimal, datetime, date and bytes are registered already, and so
    are the generic ``enum`` and ``dataclass`` transcodings (by name); all
    of these are handled natively in Rust while they are the ones registered.
    """

    def __init__(self) -> None:
        """Create a transcoder with the built-in transcodings registered."""
        self.types: dict[type, Transcoding] = {}
        self.names: dict[str, Transcoding] = {}
        for transcoding in (
            UUIDAsHex(),
            DecimalAsStr(),
            DatetimeAsISO(),
            DateAsISO(),
            BytesAsBase64(),
        ):
            self.register(transcoding)
        # By name only: these stand for whole families of types, and are
        # used when a value's exact type has no transcoding.
        for generic in (EnumAsTopicValue(), DataclassAsTopicFields()):
            self.names[generic.name] = generic

    def register(self, transcoding: Transcoding) -> None:
        """Use ``transcoding`` for values of exactly its type, and its name.

        A built-in name (``uuid_hex``, ``decimal_str``, ...) may be registered
        again only for its own type (as eventsourcing's ``UUIDAsHex`` is):
        under another type it would change how every stored value of the
        built-in type reads back, so TranscodingError is raised instead.
        """
        builtin = _BUILTIN_NAMES.get(transcoding.name)
        if builtin is not None and not _same_kind(transcoding, builtin):
            msg = (
                f"cannot register {type(transcoding).__qualname__} under the name "
                f"{transcoding.name!r}: esox stores {builtin.__name__} values "
                "under that name. Give the transcoding a name of its own, e.g. "
                f"{transcoding.type.__name__.lower()!r}"
            )
            raise TranscodingError(msg)
        self.types[transcoding.type] = transcoding
        self.names[transcoding.name] = transcoding

    def encode(self, obj: Any) -> bytes:
        """Return ``obj`` as compact JSON bytes (non-ASCII kept)."""
        return _core.encode_json(obj, self, paths=False)

    def decode(self, data: bytes) -> Any:
        """Return the object that the JSON ``data`` holds."""
        return _core.decode_json(data, self)
