"""The event store: domain events in, domain events out, through mapper and recorder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from esox._core import Mapper, Notification
from esox.persistence.recorders import AggregateRecorder

__all__ = ["EventStore", "Recording"]

TAggregateID = TypeVar("TAggregateID", UUID, str)


@dataclass(frozen=True)
class Recording(Generic[TAggregateID]):
    """A domain event and the notification it was recorded as."""

    domain_event: Any
    notification: Notification


class EventStore(Generic[TAggregateID]):
    """Stores and retrieves the domain events of aggregates."""

    def __init__(self, mapper: Mapper, recorder: AggregateRecorder) -> None:
        self.mapper = mapper
        self.recorder = recorder

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording[Any]]:
        """Store events (one atomic batch); return their recordings."""
        stored_events = self.mapper.to_stored_events(domain_events)
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
        if not notification_ids:
            return []
        return [
            Recording(
                domain_event,
                Notification(
                    s.originator_id, s.originator_version, s.topic, s.state, n_id
                ),
            )
            for domain_event, s, n_id in zip(
                domain_events, stored_events, notification_ids, strict=True
            )
        ]

    def get(
        self,
        originator_id: TAggregateID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[Any]:
        """Retrieve one aggregate's domain events, by version."""
        stored = self.recorder.select_events(
            originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        return self.mapper.to_domain_events(stored)
