"""The mapper users name and subclass: esox's Rust mapper, generic in the
aggregate id type, whose subclasses may override the per-event methods."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any, Generic, cast

from esox import _core
from esox._core import StoredEvent
from esox.domain.protocols import TAggregateID
from esox.persistence.cipher import Cipher
from esox.persistence.compression import Compressor
from esox.utils import _topic_cache

__all__ = ["Mapper", "overrides_decoding"]


def _each_to_stored_event(self: Any, domain_events: Iterable[Any]) -> list[StoredEvent]:
    return [self.to_stored_event(event) for event in domain_events]


def _each_to_domain_event(self: Any, stored_events: Iterable[StoredEvent]) -> list[Any]:
    return [self.to_domain_event(stored) for stored in stored_events]


_mappers: weakref.WeakSet[_core.Mapper] = weakref.WeakSet()


def _forget_classes() -> None:
    """Registered topics changed: every mapper resolves topics again."""
    for mapper in list(_mappers):
        mapper.forget_classes()


_topic_cache.listeners.append(_forget_classes)


class Mapper(_core.Mapper, Generic[TAggregateID]):
    """Converts domain events to stored events and back (transcoder, then
    compressor, then cipher), a whole batch per call in Rust.

    A subclass may override ``to_stored_event`` and ``to_domain_event`` (for
    pydantic or msgspec events, say): the batch methods then call them for
    each event, and replay goes through them too, so nothing is skipped.
    """

    def __new__(
        cls,
        transcoder: Any,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Mapper[TAggregateID]:
        # The Rust constructor takes only these; a subclass's __init__ may
        # take more (its own __init__ sees every argument).
        mapper = super().__new__(cls, transcoder, compressor=compressor, cipher=cipher)
        _mappers.add(mapper)
        return cast(Mapper[TAggregateID], mapper)

    def __init__(
        self,
        transcoder: Any,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        """Set by ``__new__`` (the Rust object is immutable)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "to_stored_event" in cls.__dict__ and "to_stored_events" not in cls.__dict__:
            cls.to_stored_events = _each_to_stored_event  # type: ignore[method-assign]
        if "to_domain_event" in cls.__dict__ and "to_domain_events" not in cls.__dict__:
            cls.to_domain_events = _each_to_domain_event  # type: ignore[method-assign]


def overrides_decoding(mapper: Any) -> bool:
    """Whether ``mapper`` decodes through Python methods of its own (so Rust
    replay, which decodes natively, must not be used with it)."""
    return type(mapper).to_domain_events is not _core.Mapper.to_domain_events
