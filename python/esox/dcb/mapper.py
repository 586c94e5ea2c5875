"""DCB mappers: tagged decisions to DCB events and back.

``DCBMapper`` is eventsourcing's interface (one event per call); esox adds
batch methods, which ``DCBEventStore`` calls, so a mapper that can do a whole
batch at once (``JSONDCBMapper``, in Rust) crosses into Rust once per read or
append.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic
from uuid import UUID

from esox._core import StoredEvent
from esox.dcb.api import DCBEvent
from esox.dcb.domain import Tagged, TDecision
from esox.persistence.errors import ProgrammingError
from esox.persistence.mapper import Mapper
from esox.persistence.transcoding import JSONTranscoder, Transcoder

__all__ = ["DCBMapper", "JSONDCBMapper"]

# esox's mapper encodes an event's __dict__ without these two (and binds
# them to a cipher's associated data): fixed values, never in a DCB event.
_ID, _VERSION = "originator_id", "originator_version"
_NO_ORIGINATOR = UUID(int=0)


def _with_origin(decision: Any) -> Any:
    """A shallow twin of ``decision`` with the attributes esox's mapper needs."""
    cls = type(decision)
    state = getattr(decision, "__dict__", None)
    if state is None or hasattr(cls, "__struct_fields__"):
        msg = (
            f"JSONDCBMapper records a decision's __dict__, and {cls.__qualname__} "
            "has none of its fields there (for msgspec structs, "
            "MAPPER_TOPIC=esox.dcb.msgpack:MessagePackMapper)"
        )
        raise ProgrammingError(msg)
    if _ID in state or _VERSION in state:
        msg = (
            f"{cls.__qualname__} has an attribute {_ID!r} or {_VERSION!r}: the "
            "JSON DCB mapper reserves them (a decision has tags, not an originator)"
        )
        raise ProgrammingError(msg)
    twin: Any = object.__new__(cls)
    twin_state = twin.__dict__
    twin_state.update(state)
    twin_state[_ID] = _NO_ORIGINATOR
    twin_state[_VERSION] = 0
    return twin


class DCBMapper(ABC, Generic[TDecision]):
    """Converts tagged decisions to DCB events (type, data, tags) and back."""

    @abstractmethod
    def to_dcb_event(self, event: Tagged[TDecision]) -> DCBEvent:
        """The DCB event that records ``event``."""

    @abstractmethod
    def to_domain_event(self, event: DCBEvent) -> Tagged[TDecision]:
        """The tagged decision that ``event`` records."""

    def to_dcb_events(self, events: Sequence[Tagged[TDecision]]) -> list[DCBEvent]:
        """``to_dcb_event`` of each (override to convert a batch at once)."""
        return [self.to_dcb_event(e) for e in events]

    def to_domain_events(self, events: Sequence[DCBEvent]) -> list[Tagged[TDecision]]:
        """``to_domain_event`` of each (override to convert a batch at once)."""
        return [self.to_domain_event(e) for e in events]


class JSONDCBMapper(DCBMapper[Any]):
    """Decisions as esox stores aggregate events: the JSON of their
    attributes (custom types through the transcoder), then compressed, then
    encrypted, by esox's Rust mapper, a batch per call. The DCB event's type
    is the decision class's topic.

    A decision is read back the way events are: its class's ``__new__`` and
    its attributes set, ``__init__`` not called. Decisions whose attributes
    are not a ``__dict__`` (msgspec structs) need ``esox.dcb.msgpack``.
    """

    def __init__(
        self,
        transcoder: Transcoder | None = None,
        *,
        compressor: Any = None,
        cipher: Any = None,
    ) -> None:
        self.mapper = Mapper[Any](
            transcoder or JSONTranscoder(), compressor=compressor, cipher=cipher
        )

    def to_dcb_event(self, event: Tagged[Any]) -> DCBEvent:
        """The DCB event that records ``event``."""
        return self.to_dcb_events([event])[0]

    def to_domain_event(self, event: DCBEvent) -> Tagged[Any]:
        """The tagged decision that ``event`` records."""
        return self.to_domain_events([event])[0]

    def to_dcb_events(self, events: Sequence[Tagged[Any]]) -> list[DCBEvent]:
        """The DCB events that record ``events``, encoded in one call."""
        stored = self.mapper.to_stored_events(
            [_with_origin(e.decision) for e in events]
        )
        return [
            DCBEvent(type=s.topic, data=s.state, tags=e.tags)
            for s, e in zip(stored, events, strict=True)
        ]

    def to_domain_events(self, events: Sequence[DCBEvent]) -> list[Tagged[Any]]:
        """The tagged decisions that ``events`` record, decoded in one call."""
        decisions = self.mapper.to_domain_events(
            [StoredEvent(_NO_ORIGINATOR, 0, e.type, e.data) for e in events]
        )
        for decision in decisions:
            state = decision.__dict__
            del state[_ID]
            del state[_VERSION]
        return [
            Tagged(tags=e.tags, decision=d)
            for e, d in zip(events, decisions, strict=True)
        ]
