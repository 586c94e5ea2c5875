"""eventsourcing's Mapper, with the work done by esox's Rust mapper.

The Rust mapper writes the same JSON as eventsourcing's ``JSONTranscoder``
(its ``types`` and ``names`` registries are read directly) and builds events
the same way. eventsourcing's zlib compressor and AES cipher are swapped for
esox's own (same formats, same key; run in Rust a batch at a time); other
compressors and ciphers are called as they are. Where the result could still
differ, eventsourcing's own code does the work:

- a transcoder other than eventsourcing's ``JSONTranscoder`` (a subclass that
  changes how JSON is written or read, or another transcoder altogether),
  or other transcodings registered as ``uuid_hex``, ``decimal_str`` or
  ``datetime_iso`` (checked when the mapper is constructed);
- an event class whose topic esox would write differently (a ``TOPIC``
  attribute inherited from a base class), or a topic whose class esox would
  resolve differently (eventsourcing's
  registered topics are honoured: a topic esox cannot resolve is registered
  with esox too), or whose string originator ids eventsourcing would convert
  differently (it reads ``originator_id_type`` or the ``originator_id``
  annotation);
- anything that raises: the event is mapped again by eventsourcing's code, so
  that errors are eventsourcing's, with its messages.
"""

from __future__ import annotations

import json
import zlib
from base64 import b64encode
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any
from uuid import UUID

import eventsourcing.persistence as es
from eventsourcing.compressor import ZlibCompressor as EsZlibCompressor
from eventsourcing.domain import DomainEventProtocol, TAggregateID
from eventsourcing.utils import get_topic, resolve_topic

from esox import _core
from esox.dropin.boundary import core_stored_events, es_stored_event
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor
from esox.utils import TopicError, register_topic
from esox.utils import get_topic as esox_get_topic
from esox.utils import resolve_topic as esox_resolve_topic

__all__ = ["Mapper"]

_topic = attrgetter("topic")

# The transcodings esox's codec does natively, by type and by name.
_NATIVE = (
    (UUID, "uuid_hex", es.UUIDAsHex),
    (Decimal, "decimal_str", es.DecimalAsStr),
    (datetime, "datetime_iso", es.DatetimeAsISO),
)


def _writes_like_eventsourcing(transcoder: object) -> bool:
    """Whether ``transcoder`` is eventsourcing's JSONTranscoder, unchanged.

    Subclasses that only register transcodings qualify; one that changes how
    JSON is written or read (methods, or its ``json`` encoder and decoder)
    does not, nor does one with other transcodings under the names that the
    Rust codec reads as UUID, Decimal and datetime itself.
    """
    if not isinstance(transcoder, es.JSONTranscoder):
        return False
    cls = type(transcoder)
    base = es.JSONTranscoder
    for name in ("encode", "decode", "_encode_obj", "_decode_obj"):
        if getattr(cls, name) is not getattr(base, name):
            return False
    encoder, decoder = transcoder.encoder, transcoder.decoder
    if not (
        type(encoder) is json.JSONEncoder
        and encoder.item_separator == ","
        and encoder.key_separator == ":"
        and not encoder.ensure_ascii
        and not encoder.sort_keys
        and not encoder.skipkeys
        and encoder.allow_nan
        and encoder.indent is None
        and encoder.default == transcoder._encode_obj
    ):
        return False
    if not (
        type(decoder) is json.JSONDecoder
        and decoder.object_hook == transcoder._decode_obj
        and decoder.object_pairs_hook is None
        and decoder.parse_float is float
        and decoder.parse_int is int
        and decoder.strict
    ):
        return False
    # Rust does these natively when registered under these names (by type),
    # or for these types (by name): only eventsourcing's own may be.
    for native_type, name, transcoding_cls in _NATIVE:
        by_type = transcoder.types.get(native_type)
        by_name = transcoder.names.get(name)
        if (
            type(by_type) is not transcoding_cls
            and getattr(by_type, "name", None) == name
        ) or (
            type(by_name) is not transcoding_cls
            and getattr(by_name, "type", None) is native_type
        ):
            return False
    return True


def _native_compressor(compressor: object) -> object:
    """esox's zlib (run in Rust, a batch at a time) for eventsourcing's zlib."""
    if compressor is zlib or type(compressor) is EsZlibCompressor:
        return ZlibCompressor()
    return compressor


def _native_cipher(cipher: object) -> object:
    """esox's AES-GCM (run in Rust) for eventsourcing's, with the same key."""
    cls = type(cipher)
    key = getattr(cipher, "key", None)
    if (cls.__module__, cls.__qualname__) == (
        "eventsourcing.cipher",
        "AESCipher",
    ) and isinstance(key, bytes):
        return AESCipher({AESCipher.CIPHER_KEY: b64encode(key).decode()})
    return cipher


class Mapper(es.Mapper[TAggregateID]):
    """Converts domain events to eventsourcing's StoredEvents and back, in Rust.

    A drop-in for eventsourcing's ``Mapper`` (a subclass of it), with batch
    methods that the drop-in event store uses to cross into Rust once per
    batch: ``to_stored_records`` and ``to_domain_events``.
    """

    def __init__(
        self,
        transcoder: es.Transcoder,
        compressor: es.Compressor | None = None,
        cipher: es.Cipher | None = None,
    ) -> None:
        super().__init__(transcoder, compressor=compressor, cipher=cipher)
        self._rust: _core.Mapper | None = None
        if _writes_like_eventsourcing(transcoder):
            self._rust = _core.Mapper(
                transcoder,
                compressor=_native_compressor(compressor),
                cipher=_native_cipher(cipher),
            )
        # Whether the Rust mapper encodes events of a class as eventsourcing
        # does, and decodes events of a topic as eventsourcing does.
        self._encodes: dict[type, bool] = {}
        self._agreed: dict[str, bool] = {}

    @property
    def is_native(self) -> bool:
        """Whether esox's Rust mapper does the work (see the module docstring)."""
        return self._rust is not None

    # Encoding.

    def to_stored_event(
        self, domain_event: DomainEventProtocol[TAggregateID]
    ) -> es.StoredEvent:
        """Convert a domain event to eventsourcing's StoredEvent."""
        rust = self._rust
        if rust is not None and self._encodes_alike((type(domain_event),)):
            try:
                return es_stored_event(rust.to_stored_event(domain_event))
            except Exception:  # eventsourcing's code below raises its own error
                pass
        return super().to_stored_event(domain_event)

    def to_stored_records(
        self, domain_events: Sequence[DomainEventProtocol[TAggregateID]]
    ) -> list[_core.StoredEvent]:
        """Convert domain events to esox's stored events, in one call."""
        rust = self._rust
        if rust is not None and self._encodes_alike(set(map(type, domain_events))):
            try:
                return rust.to_stored_events(domain_events)
            except Exception:  # eventsourcing's code below raises its own error
                pass
        encode = super().to_stored_event
        return core_stored_events([encode(event) for event in domain_events])

    # Decoding.

    def to_domain_event(
        self, stored_event: es.StoredEvent
    ) -> DomainEventProtocol[TAggregateID]:
        """Convert a stored event (eventsourcing's or esox's) to a domain event."""
        rust = self._rust
        if rust is not None:
            topic = stored_event.topic
            agreed = self._agreed.get(topic)
            if agreed is None:
                agreed = self._agree(topic)
            if agreed:
                try:
                    # Rust reads the fields of any stored event (not only esox's).
                    event: DomainEventProtocol[TAggregateID] = rust.to_domain_event(
                        stored_event  # type: ignore[arg-type]
                    )
                except Exception:  # eventsourcing's code below raises its own error
                    pass
                else:
                    return event
        return super().to_domain_event(stored_event)

    def to_domain_events(
        self, stored_events: Sequence[Any]
    ) -> list[DomainEventProtocol[TAggregateID]]:
        """Convert stored events (eventsourcing's or esox's) to domain events."""
        rust = self._rust
        if rust is not None and self._all_agreed(set(map(_topic, stored_events))):
            try:
                return rust.to_domain_events(stored_events)
            except Exception:  # eventsourcing's code below raises its own error
                pass
        decode = self.to_domain_event
        return [decode(stored) for stored in stored_events]

    def _encodes_alike(self, classes: Iterable[type]) -> bool:
        """Whether the Rust mapper gives these classes eventsourcing's topics.

        (eventsourcing reads a ``TOPIC`` attribute with ``getattr``, so
        subclasses inherit it; esox reads only a class's own.)
        """
        encodes = self._encodes
        for cls in classes:
            alike = encodes.get(cls)
            if alike is None:
                try:
                    alike = get_topic(cls) == esox_get_topic(cls)
                except Exception:
                    alike = False
                encodes[cls] = alike
            if not alike:
                return False
        return True

    def _all_agreed(self, topics: Iterable[str]) -> bool:
        agreed = self._agreed
        for topic in topics:
            ok = agreed.get(topic)
            if ok is None:
                ok = self._agree(topic)
            if not ok:
                return False
        return True

    def _agree(self, topic: str) -> bool:
        """Whether Rust decodes events of ``topic`` as eventsourcing would.

        Learnt once per topic; not remembered when eventsourcing cannot
        resolve the topic either (its error is raised each time).
        """
        try:
            cls = resolve_topic(topic)
        except Exception:
            return False
        agreed = self._agreed[topic] = _decodes_alike(topic, cls)
        return agreed


def _decodes_alike(topic: str, cls: Any) -> bool:
    """Whether the Rust mapper resolves ``topic`` to ``cls`` and treats its
    originator ids as eventsourcing's ``find_id_convertor`` does."""
    if not isinstance(cls, type):
        return False
    try:
        resolved = esox_resolve_topic(topic)
    except TopicError:
        # A topic registered with eventsourcing alone (a renamed class).
        try:
            register_topic(topic, cls)
        except TopicError:
            return False
        resolved = cls
    if resolved is not cls:
        return False
    try:
        object.__new__(cls)
        es.find_id_convertor(cls, UUID)
        uuid_from_str = es.find_id_convertor(cls, str) is es.str_to_uuid_convertor
    except Exception:
        return False
    # esox turns a str id into a UUID unless the class's originator_id_type is str.
    return uuid_from_str == (getattr(cls, "originator_id_type", None) is not str)
