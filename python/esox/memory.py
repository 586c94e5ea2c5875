"""In-memory persistence (``PERSISTENCE_MODULE=esox.memory``), the default.

The recorders are the Rust ``MemoryRecorder``: thread-safe, atomic batches,
waits that release the GIL instead of polling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from esox._core import MemoryRecorder, StoredEvent, Tracking
from esox.persistence.factory import InfrastructureFactory
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)

__all__ = [
    "MemoryAggregateRecorder",
    "MemoryApplicationRecorder",
    "MemoryFactory",
    "MemoryProcessRecorder",
    "MemoryTrackingRecorder",
]


class MemoryAggregateRecorder(MemoryRecorder, AggregateRecorder):
    """Aggregate recorder kept in memory (``insert_events`` returns None: it
    numbers no notifications, as SQLite's and eventsourcing's don't)."""

    def insert_events(  # type: ignore[override]
        self,
        stored_events: Sequence[StoredEvent],
        *,
        tracking: Tracking | None = None,
        **kwargs: Any,
    ) -> None:
        super().insert_events(stored_events, tracking=tracking, **kwargs)


class MemoryApplicationRecorder(MemoryRecorder, ApplicationRecorder):
    """Application recorder kept in memory."""


class MemoryTrackingRecorder(MemoryRecorder, TrackingRecorder):
    """Tracking recorder kept in memory."""


class MemoryProcessRecorder(MemoryRecorder, ProcessRecorder):
    """Process recorder kept in memory."""


class MemoryFactory(InfrastructureFactory[Any]):
    """Builds in-memory recorders: nothing survives the process."""

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return MemoryAggregateRecorder()

    def application_recorder(self) -> ApplicationRecorder:
        return MemoryApplicationRecorder()

    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        cls = self.tracking_recorder_class(
            tracking_recorder_class, MemoryTrackingRecorder
        )
        return cls()  # type: ignore[no-any-return]

    def process_recorder(self) -> ProcessRecorder:
        return MemoryProcessRecorder()
