"""Recorder interfaces: where stored events, notifications and tracking live.

The same names and semantics as eventsourcing 9.x, so every recorder (memory,
SQLite, PostgreSQL) can be checked by one shared test suite.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from threading import Event
from typing import Any, Self
from uuid import UUID

from esox._core import Notification, StoredEvent, Tracking
from esox.persistence.errors import WaitInterruptedError
from esox.utils import Stopping

__all__ = [
    "AggregateRecorder",
    "ApplicationRecorder",
    "ProcessRecorder",
    "Recorder",
    "Subscription",
    "TrackingRecorder",
]


class Recorder:
    """Base class of all recorders."""


class AggregateRecorder(Recorder, ABC):
    """Records and selects the stored events of aggregate sequences."""

    @abstractmethod
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert a batch atomically; IntegrityError if a version is taken."""

    @abstractmethod
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """Select one aggregate's stored events, by version."""


class ApplicationRecorder(AggregateRecorder):
    """An aggregate recorder that also orders all events as notifications."""

    @abstractmethod
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """Select notifications from ``start`` (ids ascending), at most ``limit``."""

    @abstractmethod
    def max_notification_id(self) -> int | None:
        """The id of the last notification, or None when there are none."""

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription:
        """Iterate over notifications after ``gt`` as they are committed."""
        return Subscription(self, gt=gt, topics=topics)

    def wait_for_notification(self, gt: int, timeout: float) -> bool:
        """Block until a notification after ``gt`` exists, or ``timeout`` passes.

        Recorders override this to be woken instead of polling.
        """
        deadline = time.monotonic() + timeout
        while True:
            if (self.max_notification_id() or 0) > gt:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(0.01, remaining))


class TrackingRecorder(Recorder, ABC):
    """Records how far an application has processed its upstream logs."""

    @abstractmethod
    def insert_tracking(self, tracking: Tracking) -> None:
        """Record a tracking position; IntegrityError if already recorded."""

    @abstractmethod
    def max_tracking_id(self, application_name: str) -> int | None:
        """The last processed notification id of that upstream application."""

    def has_tracking_id(
        self, application_name: str, notification_id: int | None
    ) -> bool:
        """Whether that notification of that application was processed."""
        if notification_id is None:
            return True
        return (self.max_tracking_id(application_name) or 0) >= notification_id

    def wait_for_tracking(
        self, application_name: str, notification_id: int, timeout: float
    ) -> bool:
        """Block until the tracking id is recorded or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not self.has_tracking_id(application_name, notification_id):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(0.01, remaining))
        return True

    def wait(
        self,
        application_name: str,
        notification_id: int | None,
        timeout: float = 1.0,
        interrupt: Event | None = None,
    ) -> None:
        """Wait until ``notification_id`` of ``application_name`` is processed.

        Raises TimeoutError after ``timeout`` seconds, WaitInterruptedError if
        ``interrupt`` is set first.
        """
        if notification_id is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            if interrupt is not None and interrupt.is_set():
                raise WaitInterruptedError
            remaining = deadline - time.monotonic()
            step = min(remaining, 0.1) if interrupt is not None else remaining
            if self.wait_for_tracking(application_name, notification_id, max(step, 0)):
                return
            if time.monotonic() >= deadline:
                msg = (
                    f"Timed out after {timeout}s waiting for notification "
                    f"{notification_id} of {application_name!r} to be processed"
                )
                raise TimeoutError(msg)


class ProcessRecorder(TrackingRecorder, ApplicationRecorder, ABC):
    """Records new events and a tracking position in one atomic step."""


class Subscription(Stopping, Iterator[Notification]):
    """New notifications, yielded as they are committed; stop() or close it."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
        batch_size: int = 1000,
    ) -> None:
        self._recorder = recorder
        self._last_id = gt or 0
        self._topics = tuple(topics)
        self._batch_size = batch_size
        self._buffer: list[Notification] = []
        self._stopped = Event()

    def stop(self) -> None:
        """Stop the subscription: iteration ends."""
        self._stopped.set()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Notification:
        if self._stopped.is_set():
            # Stopped means ended, even with notifications in hand.
            raise StopIteration
        while not self._buffer:
            if self._stopped.is_set():
                raise StopIteration
            batch = self._recorder.select_notifications(
                start=self._last_id,
                limit=self._batch_size,
                topics=self._topics,
                inclusive_of_start=False,
            )
            if batch:
                self._buffer.extend(reversed(batch))
                self._last_id = batch[-1].id
            else:
                # With topics, later notifications may all be filtered out:
                # wait past the newest id, not just the last one yielded.
                newest = self._recorder.max_notification_id() or 0
                self._recorder.wait_for_notification(max(newest, self._last_id), 0.1)
        return self._buffer.pop()
