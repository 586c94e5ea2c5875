"""eventsourcing's recorder interfaces, implemented by esox's recorders.

Each drop-in recorder holds one esox recorder (``core``): eventsourcing's
records are converted at the boundary, esox's exceptions become
eventsourcing's, and waiting (``wait``, ``subscribe``) is esox's, woken by
commits instead of polling. The drop-in event store skips the conversions
altogether with ``insert_records`` and ``select_records``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from threading import Event
from typing import Any
from uuid import UUID

import eventsourcing.persistence as es

from esox import _core
from esox.dropin.boundary import (
    EsoxError,
    core_stored_events,
    core_tracking,
    es_notification,
    es_notifications,
    es_stored_events,
    reraise,
)
from esox.persistence import recorders as esox

__all__ = [
    "AggregateRecorder",
    "ApplicationRecorder",
    "ProcessRecorder",
    "Recorder",
    "Subscription",
    "TableRecorder",
    "TrackingRecorder",
]


class Recorder:
    """Base class of the drop-in recorders: the esox recorder they use."""

    core: esox.Recorder

    def __init__(self, core: esox.Recorder) -> None:
        self.core = core


class TableRecorder(Recorder):
    """A drop-in over a database recorder: its tables are created on request."""

    def __init__(self, make_core: Callable[[], esox.Recorder]) -> None:
        """Make the esox recorder; its errors are raised as eventsourcing's."""
        try:
            core = make_core()
        except EsoxError as e:
            reraise(e)
        super().__init__(core)

    def create_table(self) -> None:
        """Create the tables (and schema) if they are missing."""
        try:
            self.core.create_table()  # type: ignore[attr-defined]
        except EsoxError as e:
            reraise(e)


class AggregateRecorder(Recorder, es.AggregateRecorder):
    """Stored events of aggregates (snapshots use this alone)."""

    core: esox.AggregateRecorder

    def insert_events(
        self, stored_events: Sequence[es.StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert a batch atomically; IntegrityError if a version is taken."""
        self.insert_records(core_stored_events(stored_events), **kwargs)
        return None

    def insert_records(
        self, records: Sequence[_core.StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert esox's stored events; notification ids if the table keeps them."""
        try:
            self.core.insert_events(records)
        except EsoxError as e:
            reraise(e)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[es.StoredEvent]:
        """Select one aggregate's stored events, by version."""
        return es_stored_events(
            self.select_records(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        )

    def select_records(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[_core.StoredEvent]:
        """Select one aggregate's stored events as esox's records."""
        try:
            records: Sequence[_core.StoredEvent] = self.core.select_events(
                originator_id, gt=gt, lte=lte, desc=desc, limit=limit
            )
        except EsoxError as e:
            reraise(e)
        return records


class ApplicationRecorder(AggregateRecorder, es.ApplicationRecorder):
    """Stored events, numbered as notifications of the application."""

    core: esox.ApplicationRecorder

    def insert_events(
        self, stored_events: Sequence[es.StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert a batch atomically; returns its notification ids."""
        return self.insert_records(core_stored_events(stored_events), **kwargs)

    def insert_records(
        self, records: Sequence[_core.StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # As eventsourcing's application recorders, ignore ``tracking``.
        try:
            ids: Sequence[int] | None = self.core.insert_events(records)
        except EsoxError as e:
            reraise(e)
        return ids

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[es.Notification]:
        """Select notifications from ``start`` (ids ascending), at most ``limit``."""
        try:
            records = self.core.select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
        except EsoxError as e:
            reraise(e)
        return es_notifications(records)

    def max_notification_id(self) -> int | None:
        """The id of the last notification, or None when there are none."""
        try:
            max_id: int | None = self.core.max_notification_id()
        except EsoxError as e:
            reraise(e)
        return max_id

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> es.Subscription[es.ApplicationRecorder]:
        """Iterate over notifications after ``gt`` as they are committed."""
        return Subscription(self, gt=gt, topics=topics)


class TrackingRecorder(Recorder, es.TrackingRecorder):
    """Positions in upstream notification logs, one row per application."""

    core: esox.TrackingRecorder

    def insert_tracking(self, tracking: es.Tracking) -> None:
        """Record a tracking position; IntegrityError unless past the last one."""
        try:
            self.core.insert_tracking(
                _core.Tracking(tracking.application_name, tracking.notification_id)
            )
        except EsoxError as e:
            reraise(e)

    def max_tracking_id(self, application_name: str) -> int | None:
        """The last processed notification id of that upstream application."""
        try:
            max_id: int | None = self.core.max_tracking_id(application_name)
        except EsoxError as e:
            reraise(e)
        return max_id

    def has_tracking_id(
        self, application_name: str, notification_id: int | None
    ) -> bool:
        """Whether that notification of that application was processed."""
        try:
            found: bool = self.core.has_tracking_id(application_name, notification_id)
        except EsoxError as e:
            reraise(e)
        return found

    def wait(
        self,
        application_name: str,
        notification_id: int | None,
        timeout: float = 1.0,
        interrupt: Event | None = None,
    ) -> None:
        """Block until that notification is processed: woken, not polling.

        TimeoutError after ``timeout`` seconds; WaitInterruptedError if
        ``interrupt`` is set first.
        """
        try:
            self.core.wait(application_name, notification_id, timeout, interrupt)
        except EsoxError as e:
            reraise(e)


class ProcessRecorder(TrackingRecorder, ApplicationRecorder, es.ProcessRecorder):
    """New events and the tracking position they came from, atomically."""

    core: esox.ProcessRecorder

    def insert_records(
        self, records: Sequence[_core.StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tracking = core_tracking(kwargs.get("tracking"))
        try:
            ids: Sequence[int] | None = self.core.insert_events(
                records, tracking=tracking
            )
        except EsoxError as e:
            reraise(e)
        return ids


class Subscription(es.Subscription[es.ApplicationRecorder]):
    """eventsourcing's Subscription over esox's: notifications as committed."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder, gt=gt, topics=topics)
        self._subscription: esox.Subscription = recorder.core.subscribe(
            gt=gt, topics=topics
        )

    def stop(self) -> None:
        """Stop the subscription: iteration ends (in any thread)."""
        super().stop()
        self._subscription.stop()

    def __next__(self) -> es.Notification:
        if self._has_been_stopped:
            raise StopIteration
        try:
            record = next(self._subscription)
        except EsoxError as e:
            reraise(e)
        if self._has_been_stopped:
            raise StopIteration
        self._last_notification_id = record.id
        return es_notification(record)
