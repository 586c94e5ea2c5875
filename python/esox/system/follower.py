"""Followers, leaders and process applications: applications that react to others.

A ``Follower`` reads the notification logs of the applications it follows
and runs its ``policy`` on each event, recording what the policy collects
together with the position of the event (a ``Tracking``) in one transaction:
every upstream event is processed exactly once, in order, also across
restarts (processing resumes from the recorded position).
A ``Leader`` prompts its followers after each save, so they need not poll.
A ``ProcessApplication`` is both.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Generic

from esox.application import Application, NotificationLog
from esox.domain.protocols import TAggregateID
from esox.persistence import (
    IntegrityError,
    Mapper,
    Notification,
    Recording,
    Tracking,
)
from esox.system.errors import EventProcessingError, NotificationPullingError
from esox.system.projection import EventSourcedProjection
from esox.system.reader import NotificationLogReader
from esox.utils import EnvType, get_topic

__all__ = [
    "Follower",
    "Leader",
    "ProcessApplication",
    "RecordingEvent",
    "RecordingEventReceiver",
]


logger = logging.getLogger(__name__)

# Seconds between two INFO lines of progress while one pull catches up.
PROGRESS_INTERVAL = 5.0

# Settings that change how stored events are decoded.
_CODEC_KEYS = (
    "TRANSCODER_TOPIC",
    "MAPPER_TOPIC",
    "CIPHER_TOPIC",
    "CIPHER_KEY",
    "COMPRESSOR_TOPIC",
)


class RecordingEvent(Generic[TAggregateID]):
    """A leader's prompt: the events it has just recorded, as notifications."""

    def __init__(
        self,
        application_name: str,
        recordings: list[Recording[TAggregateID]],
        previous_max_notification_id: int | None,
    ) -> None:
        self.application_name = application_name
        self.recordings: list[Recording[TAggregateID]] = recordings
        self.previous_max_notification_id = previous_max_notification_id

    @property
    def max_notification_id(self) -> int:
        """The id of the last notification recorded."""
        return self.recordings[-1].notification.id

    def __repr__(self) -> str:
        ids = [r.notification.id for r in self.recordings]
        return f"RecordingEvent({self.application_name!r}, notification ids {ids})"


class RecordingEventReceiver(ABC, Generic[TAggregateID]):
    """Anything a leader can prompt: followers, runners, runner threads."""

    @abstractmethod
    def receive_recording_event(self, recording_event: RecordingEvent[Any]) -> None:
        """Take note of events a leader has just recorded."""


class Follower(
    EventSourcedProjection[TAggregateID], RecordingEventReceiver[TAggregateID]
):
    """Follows the notification logs of other applications, and processes them.

    Notifications are decoded with this application's own mapper: register
    the transcodings of the upstream events' custom types here too (and give
    the follower the upstream's cipher and compressor settings, which are
    read with the upstream's name as prefix: ``BANKACCOUNTS_CIPHER_KEY``).
    """

    pull_section_size = 100
    """Notifications pulled (and decoded) per batch."""
    follow_topics: Sequence[str] = ()
    """Another name for ``topics``: only events of these topics are processed."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "follow_topics" in cls.__dict__:
            cls.topics = tuple(cls.follow_topics)

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        self.readers: dict[str, NotificationLogReader] = {}
        self.mappers: dict[str, Mapper[Any]] = {}
        # Per upstream: the last notification id considered here (processed,
        # or passed over by the topics), at or past the recorded position.
        self._seen: dict[str, int] = {}

    def follow(self, name: str, log: NotificationLog) -> None:
        """Follow the application ``name`` through its notification log (any kind)."""
        section_size = self.pull_section_size
        log_section_size = getattr(log, "section_size", None)
        if isinstance(log_section_size, int) and log_section_size > 0:
            section_size = min(section_size, log_section_size)
        self.readers[name] = NotificationLogReader(log, section_size=section_size)
        self.mappers[name] = self.construct_upstream_mapper(name)

    def construct_upstream_mapper(self, name: str) -> Mapper[Any]:
        """The mapper for events of ``name``: this application's transcodings,
        with the upstream's codec settings (cipher, compressor)."""
        env = self.construct_env(name, self.env)
        if all(env.get(key) == self.env.get(key) for key in _CODEC_KEYS):
            return self.mapper
        factory = copy.copy(self.factory)
        factory.env = env
        return factory.mapper(
            transcoder=self.mapper.transcoder, mapper_class=type(self.mapper)
        )

    def position(self, leader_name: str) -> int:
        """How far the log of ``leader_name`` is processed (0: not at all).

        The recorded position, or past it where the notifications after it
        are not of the followed topics.
        """
        with self.processing_lock:
            seen = self._seen.get(leader_name)
            if seen is None:
                seen = self._seen[leader_name] = (
                    self.recorder.max_tracking_id(leader_name) or 0
                )
            return seen

    def pull_and_process(
        self, leader_name: str, start: int | None = None, stop: int | None = None
    ) -> None:
        """Process the notifications of ``leader_name`` after ``start`` (to ``stop``).

        ``start`` defaults to the recorded position, so calling this again
        (after a crash, say) picks up exactly where processing left off.
        """
        self._pull_and_process(leader_name, start, stop)

    def _pull_and_process(
        self,
        leader_name: str,
        start: int | None = None,
        stop: int | None = None,
        interrupt: threading.Event | None = None,
    ) -> None:
        """``pull_and_process``, returning early (between batches) on ``interrupt``."""
        with self.processing_lock:
            if start is None:
                start = self.position(leader_name)
            progress = _Progress(self.name, leader_name, start)
            try:
                for notifications in self.pull_notifications(
                    leader_name, start=start, stop=stop, inclusive_of_start=False
                ):
                    processed = self._process_batch(leader_name, notifications)
                    progress.batch(notifications, processed)
                    if interrupt is not None and interrupt.is_set():
                        return
            finally:
                progress.done(self.pull_section_size)

    def pull_notifications(
        self,
        leader_name: str,
        start: int | None,
        stop: int | None = None,
        *,
        inclusive_of_start: bool = True,
    ) -> Iterator[Sequence[Notification]]:
        """Batches of the notifications of ``leader_name`` from ``start``."""
        try:
            reader = self.readers[leader_name]
        except KeyError:
            msg = (
                f"{self.name} does not follow {leader_name!r}: call "
                f"follow({leader_name!r}, notification_log) first"
            )
            raise NotificationPullingError(msg) from None
        batches = reader.select(
            start=start,
            stop=stop,
            topics=self.topics,
            inclusive_of_start=inclusive_of_start,
        )
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as e:
                msg = (
                    f"{self.name} failed to read the notification log of "
                    f"{leader_name!r} after notification {start}: "
                    f"{type(e).__name__}: {e}"
                )
                raise NotificationPullingError(msg) from e
            yield batch

    def filter_received_notifications(
        self, notifications: Sequence[Notification]
    ) -> Sequence[Notification]:
        """The notifications of followed topics (a remote log may not filter)."""
        if self.topics:
            return [n for n in notifications if n.topic in self.topics]
        return notifications

    def convert_notifications(
        self, leader_name: str, notifications: Sequence[Notification]
    ) -> list[tuple[Any, Tracking]]:
        """Decode notifications (a batch in one call), each paired with its Tracking."""
        if not notifications:
            return []
        try:
            mapper = self.mappers.get(leader_name)
            if mapper is None:  # prompted by a leader it was not told to follow
                mapper = self.mappers[leader_name] = self.construct_upstream_mapper(
                    leader_name
                )
            domain_events = mapper.to_domain_events(notifications)
        except Exception as e:
            msg = (
                f"{self.name} failed to decode notifications "
                f"{notifications[0].id}..{notifications[-1].id} of {leader_name!r} "
                f"(are the upstream's transcodings registered here?): "
                f"{type(e).__name__}: {e}"
            )
            raise EventProcessingError(msg) from e
        return [
            (domain_event, Tracking(leader_name, n.id))
            for domain_event, n in zip(domain_events, notifications, strict=True)
        ]

    def _processed(self, tracking: Tracking) -> None:
        # Before snapshots and prompts, which may fail after the commit.
        self._passed(tracking.application_name, tracking.notification_id)

    def receive_recording_event(self, recording_event: RecordingEvent[Any]) -> None:
        """Process a leader's prompt at once (see ``process_recording_event``)."""
        self.process_recording_event(recording_event)

    def process_recording_event(self, recording_event: RecordingEvent[Any]) -> None:
        """Process the events a leader has just recorded, in order, once each.

        What was recorded is processed, not the leader's live event objects
        (which its code may still change): the prompt's notifications are
        decoded with this application's own mapper, a batch in one call, as
        catch-up decodes them. Notifications before them that were not
        processed yet (a prompt missed, or prompts out of order) are pulled
        from the log first, and those processed already are passed over.
        """
        if not recording_event.recordings:
            return
        leader_name = recording_event.application_name
        with self.processing_lock:
            position = self.position(leader_name)
            batch: list[Notification] = []
            for recording in recording_event.recordings:
                notification = recording.notification
                if notification.id <= position:
                    continue
                if notification.id > position + 1:
                    self._process_batch(leader_name, batch)
                    batch = []
                    self.pull_and_process(
                        leader_name, start=position, stop=notification.id - 1
                    )
                    self._passed(leader_name, notification.id - 1)
                batch.append(notification)
                position = notification.id
            self._process_batch(leader_name, batch)

    def _process_batch(
        self, leader_name: str, notifications: Sequence[Notification]
    ) -> int:
        """Decode (one call) and process consecutive notifications of a leader;
        return how many were of the followed topics."""
        if not notifications:
            return 0
        received = self.filter_received_notifications(notifications)
        for domain_event, tracking in self.convert_notifications(leader_name, received):
            self._process_tracked(domain_event, tracking)
        self._passed(leader_name, notifications[-1].id)
        return len(received)

    def _process_tracked(self, domain_event: Any, tracking: Tracking) -> None:
        try:
            self.process_event(domain_event, tracking)
        except EventProcessingError:
            raise
        except IntegrityError as e:
            # Already processed (tracked): a condition of the store, not a
            # failed policy; raised as it is, as eventsourcing does.
            e.add_note(
                f"{self.name} processing notification {tracking.notification_id} "
                f"of {tracking.application_name!r}"
            )
            raise
        except Exception as e:
            msg = (
                f"{self.name} failed to process notification "
                f"{tracking.notification_id} of {tracking.application_name!r} "
                f"({get_topic(type(domain_event))}): {type(e).__name__}: {e}"
            )
            raise EventProcessingError(msg) from e

    def _passed(self, leader_name: str, notification_id: int) -> None:
        if notification_id > self.position(leader_name):
            self._seen[leader_name] = notification_id


class _Progress:
    """Log lines of one pull: each batch at DEBUG; at INFO, a catch-up (a pull
    of more than a batch) every PROGRESS_INTERVAL seconds and at its end."""

    def __init__(self, follower: str, leader: str, start: int) -> None:
        self.follower, self.leader, self.start = follower, leader, start
        self.pulled = self.processed = 0
        self.last = start
        self.started = self.reported = time.monotonic()

    def batch(self, notifications: Sequence[Notification], processed: int) -> None:
        self.pulled += len(notifications)
        self.processed += processed
        self.last = notifications[-1].id
        logger.debug(
            "%s processed notifications %d to %d of %s (%d of its topics)",
            self.follower,
            notifications[0].id,
            self.last,
            self.leader,
            processed,
        )
        now = time.monotonic()
        if now - self.reported >= PROGRESS_INTERVAL:
            self.reported = now
            logger.info(
                "%s catching up with %s: at notification %d, %d read so far",
                self.follower,
                self.leader,
                self.last,
                self.pulled,
            )

    def done(self, batch_size: int) -> None:
        if not self.pulled:
            return
        level = logging.INFO if self.pulled > batch_size else logging.DEBUG
        logger.log(
            level,
            "%s caught up with %s: notifications %d to %d (%d read, %d processed) "
            "in %.2fs",
            self.follower,
            self.leader,
            self.start + 1,
            self.last,
            self.pulled,
            self.processed,
            time.monotonic() - self.started,
        )


class Leader(Application[TAggregateID]):
    """Prompts its followers after each save, with the events just recorded."""

    notify_topics: Sequence[str] = ()
    """Topics of the events to prompt about (all when empty)."""

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        self.previous_max_notification_id: int | None = None
        self.followers: list[RecordingEventReceiver[Any]] = []

    def lead(self, follower: RecordingEventReceiver[Any]) -> None:
        """Prompt ``follower`` (a follower, or a runner) after each save."""
        self.followers.append(follower)

    def _notify(self, recordings: Sequence[Recording[Any]]) -> None:
        super()._notify(recordings)
        if self.notify_topics:
            recordings = [
                r for r in recordings if r.notification.topic in self.notify_topics
            ]
        if not recordings:
            return
        recording_event = RecordingEvent(
            self.name, list(recordings), self.previous_max_notification_id
        )
        self.previous_max_notification_id = recording_event.max_notification_id
        for follower in self.followers:
            follower.receive_recording_event(recording_event)


class ProcessApplication(Leader[TAggregateID], Follower[TAggregateID]):
    """Follows some applications, and is followed by others."""
