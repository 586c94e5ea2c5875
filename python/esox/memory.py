"""In-memory persistence (``PERSISTENCE_MODULE=esox.memory``), the default.

The recorders are the Rust ``MemoryRecorder``: thread-safe, atomic batches,
waits that release the GIL instead of polling.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, cast

from esox._core import MemoryRecorder, StoredEvent, Tracking
from esox.persistence.errors import IntegrityError
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


class _ViewHooks:
    """eventsourcing's extension points for a view kept in memory (a
    subclass that updates its own state and its tracking position together):
    ``with self._database_lock: self._assert_tracking_uniqueness(t);
    self._insert_tracking(t); ...``."""

    _lock: threading.RLock | None = None

    @property
    def _database_lock(self) -> threading.RLock:
        lock = self._lock
        if lock is None:
            with _LOCK_CREATION:
                lock = self._lock = self._lock or threading.RLock()
        return lock

    def _assert_tracking_uniqueness(self, tracking: Tracking) -> None:
        """IntegrityError if ``tracking`` is not past the recorded position."""
        recorded = cast(TrackingRecorder, self).max_tracking_id(
            tracking.application_name
        )
        if recorded is not None and tracking.notification_id <= recorded:
            msg = (
                f"tracking already recorded: application "
                f"{tracking.application_name!r} notification_id "
                f"{tracking.notification_id} is not greater than {recorded}"
            )
            raise IntegrityError(msg)

    def _insert_tracking(self, tracking: Tracking) -> None:
        cast(TrackingRecorder, self).insert_tracking(tracking)


_LOCK_CREATION = threading.Lock()


class MemoryTrackingRecorder(_ViewHooks, MemoryRecorder, TrackingRecorder):
    """Tracking recorder kept in memory."""


class MemoryProcessRecorder(_ViewHooks, MemoryRecorder, ProcessRecorder):
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
