"""eventsourcing's "new" runners, for code written against them.

``NewSingleThreadedRunner`` is esox's ``SingleThreadedRunner`` (which already
queues prompts instead of recursing) that also drops a prompt older than one
it has seen. ``NewMultiThreadedRunner`` runs each follower as a pipeline of
threads joined by queues: a ``PullingThread`` per leader receives prompts
(and pulls what they skipped), a ``ConvertingThread`` per leader decodes
notifications into processing jobs, and one ``ProcessingThread`` per
follower runs its policy. Followers process what was recorded, decoded with
their own mapper, as in every esox runner.

Errors keep eventsourcing's types and messages (``NotificationPullingError``,
``NotificationConvertingError``, ``EventProcessingError``, each with the
original error as its cause); where the error happened is added as a note.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from queue import Full, Queue
from typing import Any, Generic, TypeAlias, cast

from esox.domain.protocols import TAggregateID
from esox.persistence import Notification, Tracking
from esox.system.errors import (
    EventProcessingError,
    NotificationConvertingError,
    NotificationPullingError,
)
from esox.system.follower import (
    Follower,
    Leader,
    RecordingEvent,
    RecordingEventReceiver,
)
from esox.system.runners import Runner, SingleThreadedRunner
from esox.utils import EnvType

__all__ = [
    "ConvertingJob",
    "ConvertingThread",
    "NewMultiThreadedRunner",
    "NewSingleThreadedRunner",
    "ProcessingJob",
    "ProcessingThread",
    "PullingThread",
]


ProcessingJob: TypeAlias = tuple[Any, Tracking]
"""A domain event and the tracking position it is processed at."""

ConvertingJob: TypeAlias = RecordingEvent[Any] | Sequence[Notification] | None
"""What a converting thread takes: a prompt, pulled notifications, or None to stop."""

_Batch: TypeAlias = tuple[str, list[ProcessingJob], int] | None


class NewSingleThreadedRunner(SingleThreadedRunner[TAggregateID]):
    """A single-threaded runner that drops a prompt older than one already seen
    (its leader's previous notification id is below what was received)."""

    def __init__(self, system: Any, env: EnvType | None = None) -> None:
        super().__init__(system, env)
        self._previous_max_notification_ids: dict[str, int] = {}

    @property
    def _recording_events_received(self) -> Sequence[RecordingEvent[Any]]:
        """The prompts waiting to be processed (eventsourcing's name)."""
        return self._prompts

    def receive_recording_event(self, recording_event: RecordingEvent[Any]) -> None:
        name = recording_event.application_name
        with self._prompts_lock:
            seen = self._previous_max_notification_ids.get(name, 0)
            previous = recording_event.previous_max_notification_id
            if previous is not None and previous < seen:
                return
            if recording_event.recordings:
                self._previous_max_notification_ids[name] = max(
                    seen, recording_event.max_notification_id
                )
        super().receive_recording_event(recording_event)


class _PipelineThread(threading.Thread):
    """A daemon thread of a pipeline: started, stoppable, its error kept."""

    def __init__(self, has_errored: threading.Event, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.has_errored = has_errored
        self.error: EventProcessingError | None = None
        self.is_stopping = threading.Event()
        self.has_started = threading.Event()

    def _failed(
        self, error: EventProcessingError, cause: Exception, where: str
    ) -> None:
        error.__cause__ = cause
        error.add_note(where)
        self.error = error
        self.has_errored.set()


class PullingThread(_PipelineThread, RecordingEventReceiver[TAggregateID]):
    """Receives a leader's prompts for one follower; pulls the notifications a
    prompt skipped; passes both on to the converting queue."""

    def __init__(
        self,
        converting_queue: Queue[ConvertingJob],
        follower: Follower[Any],
        leader_name: str,
        has_errored: threading.Event,
    ) -> None:
        super().__init__(has_errored, f"esox pulling {leader_name}->{follower.name}")
        self.overflow_event = threading.Event()
        self.recording_event_queue: Queue[RecordingEvent[Any] | None] = Queue(
            maxsize=100
        )
        self.converting_queue = converting_queue
        self.follower = follower
        self.leader_name = leader_name
        self.previous_max_notification_id: int | None = (
            follower.recorder.max_tracking_id(leader_name)
        )

    def receive_recording_event(self, recording_event: RecordingEvent[Any]) -> None:
        """Queue a prompt without blocking the leader; when the queue is full,
        note the overflow (the next prompt's gap is pulled instead)."""
        try:
            self.recording_event_queue.put(recording_event, timeout=0)
        except Full:
            self.overflow_event.set()

    def run(self) -> None:
        self.has_started.set()
        try:
            # What the leader recorded before the start goes first.
            self._pull(stop=None)
            while not self.is_stopping.is_set():
                recording_event = self.recording_event_queue.get()
                self.recording_event_queue.task_done()
                if recording_event is None:
                    return
                self._forward(recording_event)
        except Exception as e:
            self._failed(
                NotificationPullingError(str(e)),
                e,
                f"{self.follower.name} failed pulling from {self.leader_name!r}",
            )

    def _forward(self, recording_event: RecordingEvent[Any]) -> None:
        if not recording_event.recordings:
            return
        seen = self.previous_max_notification_id
        previous = recording_event.previous_max_notification_id
        if previous is not None and seen is not None and previous < seen:
            return  # older than a prompt already forwarded
        if previous is None or seen is None or previous > seen:
            self._pull(stop=recording_event.recordings[0].notification.id - 1)
        self.converting_queue.put(recording_event)
        self.previous_max_notification_id = recording_event.max_notification_id

    def _pull(self, stop: int | None) -> None:
        """Pass on the notifications after the last one passed on (to ``stop``)."""
        for notifications in self.follower.pull_notifications(
            self.leader_name,
            start=self.previous_max_notification_id,
            stop=stop,
            inclusive_of_start=False,
        ):
            self.converting_queue.put(notifications)
            self.previous_max_notification_id = notifications[-1].id

    def stop(self) -> None:
        self.is_stopping.set()
        self.recording_event_queue.put(None)


class ConvertingThread(_PipelineThread, Generic[TAggregateID]):
    """Decodes a leader's notifications (a batch per call, with the follower's
    own mapper) into processing jobs for the follower's processing queue."""

    def __init__(
        self,
        converting_queue: Queue[ConvertingJob],
        processing_queue: Queue[_Batch],
        follower: Follower[Any],
        leader_name: str,
        has_errored: threading.Event,
    ) -> None:
        super().__init__(has_errored, f"esox converting {leader_name}->{follower.name}")
        self.converting_queue = converting_queue
        self.processing_queue = processing_queue
        self.follower = follower
        self.leader_name = leader_name

    def run(self) -> None:
        self.has_started.set()
        try:
            while True:
                job = self.converting_queue.get()
                self.converting_queue.task_done()
                if self.is_stopping.is_set() or job is None:
                    return
                if isinstance(job, RecordingEvent):
                    notifications = [r.notification for r in job.recordings]
                else:
                    notifications = list(job)
                if not notifications:
                    continue
                received = self.follower.filter_received_notifications(notifications)
                jobs = self.follower.convert_notifications(self.leader_name, received)
                self.processing_queue.put(
                    (self.leader_name, jobs, notifications[-1].id)
                )
        except Exception as e:
            self._failed(
                NotificationConvertingError(str(e)),
                e,
                f"{self.follower.name} failed converting notifications of "
                f"{self.leader_name!r}",
            )

    def stop(self) -> None:
        self.is_stopping.set()
        self.converting_queue.put(None)


class ProcessingThread(_PipelineThread, Generic[TAggregateID]):
    """Runs one follower's policy on the processing jobs of all its leaders."""

    def __init__(
        self,
        processing_queue: Queue[_Batch],
        follower: Follower[Any],
        has_errored: threading.Event,
    ) -> None:
        super().__init__(has_errored, f"esox processing {follower.name}")
        self.processing_queue = processing_queue
        self.follower = follower

    def run(self) -> None:
        self.has_started.set()
        tracking: Tracking | None = None
        try:
            while True:
                batch = self.processing_queue.get()
                self.processing_queue.task_done()
                if self.is_stopping.is_set() or batch is None:
                    return
                leader_name, jobs, last_id = batch
                with self.follower.processing_lock:
                    for domain_event, tracking in jobs:
                        if tracking.notification_id > self.follower.position(
                            leader_name
                        ):
                            self.follower.process_event(domain_event, tracking)
                    # Notifications of other topics count as passed.
                    self.follower._passed(leader_name, last_id)
        except Exception as e:
            where = f"{self.follower.name} failed processing"
            if tracking is not None:
                where += (
                    f" notification {tracking.notification_id} of "
                    f"{tracking.application_name!r}"
                )
            self._failed(EventProcessingError(str(e)), e, where)

    def stop(self) -> None:
        self.is_stopping.set()
        self.processing_queue.put(None)


class NewMultiThreadedRunner(
    Runner[TAggregateID], RecordingEventReceiver[TAggregateID]
):
    """Runs each follower as a pipeline of threads: pulling and converting
    per leader, processing per follower. ``QUEUE_MAX_SIZE`` bounds the queues
    between them (0: unbounded)."""

    QUEUE_MAX_SIZE: int = 0

    def __init__(self, system: Any, env: EnvType | None = None) -> None:
        super().__init__(system, env)
        self.has_errored = threading.Event()
        self.pulling_threads: dict[str, list[PullingThread[Any]]] = {}
        self.processing_queues: dict[str, Queue[_Batch]] = {}
        self.all_threads: list[
            PullingThread[Any] | ConvertingThread[Any] | ProcessingThread[Any]
        ] = []
        try:
            self._construct_apps()
        except Exception:
            self.has_errored.set()
            raise

    def start(self) -> None:
        """Start each follower's threads, then have the leaders prompt the runner."""
        super().start()
        if not self.apps:
            self._construct_apps()
        self._follow_and_lead(None)
        for name in self.system.followers:
            queue: Queue[_Batch] = Queue(maxsize=self.QUEUE_MAX_SIZE)
            self.processing_queues[name] = queue
            self._start(ProcessingThread(queue, self._follower(name), self.has_errored))
        for leader_name, follower_name in self.system.edges:
            follower = self._follower(follower_name)
            converting: Queue[ConvertingJob] = Queue(maxsize=self.QUEUE_MAX_SIZE)
            self._start(
                ConvertingThread(
                    converting,
                    self.processing_queues[follower_name],
                    follower,
                    leader_name,
                    self.has_errored,
                )
            )
            pulling = PullingThread(converting, follower, leader_name, self.has_errored)
            self._start(pulling)
            self.pulling_threads.setdefault(leader_name, []).append(pulling)
        for thread in self.all_threads:
            thread.has_started.wait()
        for leader_name in self.system.leaders:
            cast(Leader[Any], self.apps[leader_name]).lead(self)

    def _start(
        self, thread: PullingThread[Any] | ConvertingThread[Any] | ProcessingThread[Any]
    ) -> None:
        self.all_threads.append(thread)
        thread.start()

    def receive_recording_event(self, recording_event: RecordingEvent[Any]) -> None:
        """Hand a leader's prompt to the pulling threads of its followers."""
        for thread in self.pulling_threads.get(recording_event.application_name, ()):
            thread.receive_recording_event(recording_event)

    def watch_for_errors(self, timeout: float | None = None) -> bool:
        """Block until a thread fails (then stop, raising its error) or
        ``timeout`` passes (False)."""
        if self.has_errored.wait(timeout=timeout):
            self.stop()
        return self.has_errored.is_set()

    def stop(self) -> None:
        """Stop the threads, close the applications, raise a thread's error."""
        for thread in self.all_threads:
            thread.stop()
        for thread in self.all_threads:
            thread.join(timeout=2)
        self.pulling_threads.clear()
        self.processing_queues.clear()
        self._close_apps()
        self.is_started = False
        self.reraise_thread_errors()

    def reraise_thread_errors(self) -> None:
        """Raise the first error of a thread that failed, if any."""
        for thread in self.all_threads:
            if thread.error is not None:
                raise thread.error
