"""Transcodings: how values of types that JSON lacks are stored and read back.

The JSON itself is written and parsed in Rust (``esox._core``); custom types
are stored as ``{"_type_": name, "_data_": data}``, byte-compatible with
eventsourcing's ``JSONTranscoder``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from esox import _core


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


class JSONTranscoder(Transcoder):
    """Compact UTF-8 JSON, extended with registered transcodings.

    UUID, Decimal and datetime are registered already (and handled natively
    in Rust while these transcodings are the ones registered).
    """

    def __init__(self) -> None:
        """Create a transcoder with the UUID, Decimal and datetime transcodings."""
        self.types: dict[type, Transcoding] = {}
        self.names: dict[str, Transcoding] = {}
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            self.register(transcoding)

    def register(self, transcoding: Transcoding) -> None:
        """Use ``transcoding`` for values of exactly its type, and its name."""
        self.types[transcoding.type] = transcoding
        self.names[transcoding.name] = transcoding

    def encode(self, obj: Any) -> bytes:
        """Return ``obj`` as compact JSON bytes (non-ASCII kept)."""
        return _core.encode_json(obj, self)

    def decode(self, data: bytes) -> Any:
        """Return the object that the JSON ``data`` holds."""
        return _core.decode_json(data, self)
