"""Event-sourced logs: a sequence of events kept like an aggregate's, but used
without reconstructing any state (for example, to discover aggregate ids)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar
from uuid import UUID

from esox.domain import Aggregate, datetime_now_with_tzinfo
from esox.persistence import EventStore

__all__ = ["EventSourcedLog"]

TLogEvent = TypeVar("TLogEvent")
SLogEvent = TypeVar("SLogEvent")


class EventSourcedLog(Generic[TLogEvent]):
    """Events of class ``logged_cls`` with one originator id, numbered from 1."""

    def __init__(
        self, events: EventStore[Any], originator_id: UUID, logged_cls: type[TLogEvent]
    ) -> None:
        self.events = events
        self.originator_id = originator_id
        self.logged_cls = logged_cls

    def trigger_event(
        self, next_originator_version: int | None = None, **kwargs: Any
    ) -> TLogEvent:
        """Construct the next log event (save it with the application's ``save``)."""
        return self._trigger_event(self.logged_cls, next_originator_version, **kwargs)

    def _trigger_event(
        self,
        logged_cls: type[SLogEvent],
        next_originator_version: int | None = None,
        **kwargs: Any,
    ) -> SLogEvent:
        if next_originator_version is None:
            last = self.get_last()
            next_originator_version = (
                Aggregate.INITIAL_VERSION
                if last is None
                else last.originator_version + 1  # type: ignore[attr-defined]
            )
        return logged_cls(
            originator_id=self.originator_id,  # type: ignore[call-arg]
            originator_version=next_originator_version,
            timestamp=datetime_now_with_tzinfo(),
            **kwargs,
        )

    def get_first(self) -> TLogEvent | None:
        """The first logged event, or None."""
        return next(self.get(limit=1), None)

    def get_last(self) -> TLogEvent | None:
        """The last logged event, or None."""
        return next(self.get(desc=True, limit=1), None)

    def get(
        self,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[TLogEvent]:
        """Logged events with versions in (gt, lte], ascending unless ``desc``."""
        events = self.events.get(
            self.originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        return iter(events)
