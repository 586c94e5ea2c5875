"""Projections: materialised views of an application, kept up to date exactly once.

A ``Projection`` writes to a *view*, a ``TrackingRecorder`` subclass that
records each update together with the position (``Tracking``) of the event
that caused it, in one transaction: after a crash or restart, processing
resumes from the view's position and no event is applied twice.
A ``ProjectionRunner`` feeds it the events of an application, in a thread.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Generic, Self, TypeVar

from esox.application import Application, ProcessingEvent
from esox.domain.protocols import TAggregateID
from esox.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    Mapper,
    ProcessRecorder,
    Tracking,
    TrackingRecorder,
    WaitInterruptedError,
)
from esox.system.dispatch import singledispatchmethod
from esox.utils import Environment, EnvType, Stopping

__all__ = [
    "ApplicationSubscription",
    "EventSourcedProjection",
    "EventSourcedProjectionRunner",
    "Projection",
    "ProjectionRunner",
]

TTrackingRecorder = TypeVar("TTrackingRecorder", bound=TrackingRecorder)
TApplication = TypeVar("TApplication", bound=Application[Any])
TEventSourcedProjection = TypeVar(
    "TEventSourcedProjection", bound="EventSourcedProjection[Any]"
)


class ApplicationSubscription(Stopping, Iterator[tuple[Any, Tracking]]):
    """The events of an application after ``gt``, with their positions, forever.

    Notifications are selected and decoded a batch at a time; when there are
    no more, iteration blocks until the recorder has new ones (the recorder's
    ``wait_for_notification``: LISTEN/NOTIFY on PostgreSQL). ``stop()`` ends
    the iteration within ``stop_latency`` seconds.
    """

    batch_size = 500
    stop_latency = 0.25

    def __init__(
        self,
        app: Application[Any],
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self.name = app.name
        self.recorder: ApplicationRecorder = app.recorder
        self.mapper: Mapper[Any] = app.mapper
        self.topics = tuple(topics)
        self._last_id = gt or 0
        self._buffer: list[tuple[Any, Tracking]] = []
        self._stopped = threading.Event()

    def stop(self) -> None:
        """End the iteration."""
        self._stopped.set()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> tuple[Any, Tracking]:
        while not self._buffer:
            if self._stopped.is_set():
                raise StopIteration
            batch = self.recorder.select_notifications(
                self._last_id,
                self.batch_size,
                topics=self.topics,
                inclusive_of_start=False,
            )
            if batch:
                events = self.mapper.to_domain_events(batch)
                self._buffer = [
                    (event, Tracking(self.name, n.id))
                    for event, n in zip(reversed(events), reversed(batch), strict=True)
                ]
                self._last_id = batch[-1].id
            else:
                # With topics, the newest notifications may all be filtered
                # out: wait for one after the newest, not after the last match.
                newest = (
                    (self.recorder.max_notification_id() or 0) if self.topics else 0
                )
                self.recorder.wait_for_notification(
                    max(newest, self._last_id), self.stop_latency
                )
        return self._buffer.pop()


class Projection(ABC, Generic[TTrackingRecorder]):
    """Processes an application's events into a materialised view.

    ``process_event`` must update the view and record ``tracking`` in one
    transaction (the view's own methods do both): that is what makes
    processing exactly-once.
    """

    name: str = ""
    """Names the projection's environment variables (``<NAME>_SQLITE_DBNAME``)."""
    topics: Sequence[str] = ()
    """Topics of the events to process (all events when empty)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def __init__(self, view: TTrackingRecorder) -> None:
        self._view = view

    @property
    def view(self) -> TTrackingRecorder:
        """The materialised view."""
        return self._view

    @singledispatchmethod
    @abstractmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Update the view from ``domain_event``, recording ``tracking`` with it."""


class EventSourcedProjection(Application[TAggregateID]):
    """An application whose new events come from processing other events.

    Its recorder is a ``ProcessRecorder``: the events the ``policy`` collects
    are recorded with the tracking position of the event that caused them,
    atomically, so each upstream event is processed exactly once.
    """

    topics: Sequence[str] = ()
    """Topics of the upstream events to process (all events when empty)."""

    recorder: ProcessRecorder

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        self.processing_lock = threading.RLock()

    def construct_recorder(self) -> ProcessRecorder:
        """The process recorder: events and tracking in one transaction."""
        return self.factory.process_recorder()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Run the policy; record the events it collected with ``tracking``, atomically.

        IntegrityError if ``tracking`` is not past the recorded position (the
        event was processed already): nothing is recorded twice.
        """
        with self.processing_lock:
            processing_event: ProcessingEvent[TAggregateID] = ProcessingEvent(
                tracking=tracking
            )
            self.policy(domain_event, processing_event)
            recordings = self._record(processing_event)
            self._processed(tracking)
            self._take_snapshots(processing_event)
            self._notify(recordings)

    def _processed(self, tracking: Tracking) -> None:
        """Called once the event's consequences and ``tracking`` are recorded."""

    @singledispatchmethod
    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[TAggregateID]
    ) -> None:
        """Decide what to do about ``domain_event`` (by default: nothing).

        Collect new events with ``processing_event.collect_events(aggregate)``
        (not ``save()``), so they are recorded atomically with the tracking
        position. Register an implementation per event type with
        ``@policy.register``.
        """


class _ProjectionRunnerBase(Stopping, Generic[TApplication]):
    """Feeds the events of an application to a projection, in a thread."""

    def __init__(
        self,
        *,
        application_class: type[TApplication],
        tracking_recorder: TrackingRecorder,
        topics: Sequence[str],
        env: EnvType | None,
    ) -> None:
        self.app: TApplication = application_class(env)
        self.app_name = self.app.name
        self._tracking_recorder = tracking_recorder
        self._topics = tuple(topics)
        self._is_interrupted = threading.Event()
        self._has_called_stop = False
        self._error: BaseException | None = None
        self._subscription: ApplicationSubscription | None = None
        self._thread: threading.Thread | None = None
        self.start()

    @staticmethod
    def _construct_env(name: str, env: EnvType | None) -> Environment:
        """The projection's environment: ``os.environ`` then ``env``, by its name."""
        merged = dict(os.environ)
        if env is not None:
            merged.update(env)
        return Environment(name, merged)

    @property
    def is_interrupted(self) -> threading.Event:
        """Set when the runner is stopped or its processing failed."""
        return self._is_interrupted

    @property
    def is_started(self) -> bool:
        """Whether events are being processed."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Process events from the view's recorded position onwards (in a thread).

        Called by the constructor; call it again to resume after ``stop()``.
        """
        if self.is_started:
            return
        self._is_interrupted.clear()
        self._has_called_stop = False
        self._subscription = ApplicationSubscription(
            self.app,
            gt=self._tracking_recorder.max_tracking_id(self.app_name),
            topics=self._topics,
        )
        self._thread = threading.Thread(
            target=self._process_events,
            args=(self._subscription,),
            name=f"esox projection of {self.app_name}",
            daemon=True,
        )
        self._thread.start()

    def _process(self, domain_event: Any, tracking: Tracking) -> None:
        raise NotImplementedError

    def _process_events(self, subscription: ApplicationSubscription) -> None:
        tracking: Tracking | None = None
        try:
            for domain_event, tracking in subscription:
                self._process(domain_event, tracking)
        except BaseException as e:
            # The projection's own error, as eventsourcing raises it (callers
            # catch its class); where it happened is added as a note.
            where = f" notification {tracking.notification_id}" if tracking else ""
            e.add_note(f"projection of {self.app_name!r} failed to process{where}")
            self._error = e
        finally:
            self._is_interrupted.set()

    def stop(self) -> None:
        """Stop processing (the thread ends soon after)."""
        self._has_called_stop = True
        self._is_interrupted.set()
        if self._subscription is not None:
            self._subscription.stop()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def run_forever(self, timeout: float | None = None) -> None:
        """Block until stopped, failed (the error is raised) or ``timeout`` passes."""
        if self._is_interrupted.wait(timeout=timeout):
            self._raise_error()

    def wait(self, notification_id: int | None, timeout: float = 1.0) -> None:
        """Block until the view has processed ``notification_id`` of the application.

        Raises the processing error if processing failed, TimeoutError after
        ``timeout`` seconds. With ``topics``, wait for an event that matches.
        """
        try:
            self._tracking_recorder.wait(
                self.app_name,
                notification_id,
                timeout=timeout,
                interrupt=self._is_interrupted,
            )
        except WaitInterruptedError:
            self._raise_error()
            if not self._has_called_stop:
                raise

    def __exit__(self, *exc_info: object) -> None:
        """Stop, wait for the thread, close the application; raise any error."""
        self.stop()
        if self._thread is not None:
            self._thread.join()
        self._close()
        self._raise_error()

    def _close(self) -> None:
        self.app.close()


class ProjectionRunner(
    _ProjectionRunnerBase[TApplication], Generic[TApplication, TTrackingRecorder]
):
    """Runs ``projection_class`` over the events of ``application_class``.

    The view (``view_class``, a tracking recorder) is built by the
    infrastructure factory that the environment, named after the projection,
    selects. Processing starts at once, from the view's recorded position,
    and stops with ``stop()`` or on leaving a ``with`` block.
    """

    def __init__(
        self,
        *,
        application_class: type[TApplication],
        projection_class: type[Projection[TTrackingRecorder]],
        view_class: type[TTrackingRecorder],
        env: EnvType | None = None,
    ) -> None:
        self._view_factory = InfrastructureFactory.construct(
            self._construct_env(projection_class.name, env)
        )
        view: Any = self._view_factory.tracking_recorder(view_class)
        self.view: TTrackingRecorder = view
        self.projection = projection_class(view=self.view)
        super().__init__(
            application_class=application_class,
            tracking_recorder=self.view,
            topics=self.projection.topics,
            env=env,
        )

    def _process(self, domain_event: Any, tracking: Tracking) -> None:
        self.projection.process_event(domain_event, tracking)

    def _close(self) -> None:
        super()._close()
        self._view_factory.close()


class EventSourcedProjectionRunner(
    _ProjectionRunnerBase[TApplication], Generic[TApplication, TEventSourcedProjection]
):
    """Runs an event-sourced projection over the events of ``application_class``."""

    def __init__(
        self,
        *,
        application_class: type[TApplication],
        projection_class: type[TEventSourcedProjection],
        env: EnvType | None = None,
    ) -> None:
        self.projection: TEventSourcedProjection = projection_class(
            env=self._construct_env(projection_class.name, env)
        )
        super().__init__(
            application_class=application_class,
            tracking_recorder=self.projection.recorder,
            topics=self.projection.topics,
            env=env,
        )

    def _process(self, domain_event: Any, tracking: Tracking) -> None:
        self.projection.process_event(domain_event, tracking)

    def _close(self) -> None:
        super()._close()
        self.projection.close()
