"""Runners: put a system's applications to work, in one thread or in several.

``SingleThreadedRunner`` processes every prompt synchronously, in the thread
that saved the events, in order: deterministic, ideal for tests.
``MultiThreadedRunner`` gives each follower a thread, woken by its leaders'
prompts. Both construct the applications with the runner's ``env`` (names
prefix the settings: ``LEDGER_SQLITE_DBNAME``), follow the leaders' logs and,
on start, catch up with whatever was recorded while they were not running.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Generic, Self, TypeVar, cast

from esox.application import Application, LocalNotificationLog
from esox.domain.protocols import TAggregateID
from esox.system.definition import System
from esox.system.errors import (
    EventProcessingError,
    RunnerAlreadyStartedError,
    SystemDefinitionError,
)
from esox.system.follower import (
    Follower,
    Leader,
    RecordingEvent,
    RecordingEventReceiver,
)
from esox.utils import EnvType, Stopping

__all__ = [
    "MultiThreadedRunner",
    "Runner",
    "SingleThreadedRunner",
    "wait_until_processed",
]

TApplication = TypeVar("TApplication", bound=Application[Any])

logger = logging.getLogger(__name__)


class Runner(Stopping, ABC, Generic[TAggregateID]):
    """Runs a ``System``: ``start()``, ``get(AppClass)``, ``stop()``, or ``with``."""

    def __init__(self, system: System, env: EnvType | None = None) -> None:
        if not isinstance(system, System):
            msg = f"Runners run a System, not {system!r}"
            raise TypeError(msg)
        self.system = system
        self.env = env
        self.is_started = False
        self.apps: dict[str, Application[Any]] = {}

    @abstractmethod
    def start(self) -> None:
        """Start running the system."""
        if self.is_started:
            msg = f"{type(self).__name__} is already started"
            raise RunnerAlreadyStartedError(msg)
        self.is_started = True
        logger.info(
            "%s starting %s (followers: %s)",
            type(self).__name__,
            ", ".join(self.system.names),
            ", ".join(self.system.followers) or "none",
        )

    @abstractmethod
    def stop(self) -> None:
        """Stop running the system and close its applications."""

    def get(self, cls: type[TApplication]) -> TApplication:
        """The running instance of application class ``cls``."""
        try:
            app = self.apps[cls.name]
        except KeyError:
            if cls.name in self.system.names:
                msg = f"{type(self).__name__} is stopped: no {cls.name} to get"
                raise RuntimeError(msg) from None
            raise KeyError(
                f"{cls.name} is not in this system (it has {self.system.names})"
            ) from None
        if not isinstance(app, cls):
            msg = f"{cls.name} in this system is a {type(app).__name__}, not {cls}"
            raise TypeError(msg)
        return app

    def wait(self, timeout: float = 10.0) -> None:
        """Block until every follower has processed all its upstream events.

        Raises a follower's error if processing failed, TimeoutError after
        ``timeout`` seconds.
        """
        wait_until_processed(self.system, self.apps, timeout)

    def _construct_apps(self) -> None:
        """The applications: followers as they are, leaders made Leaders."""
        try:
            for name in self.system.names:
                if name in self.system.follows:
                    cls: type[Application[Any]] = self.system.follower_cls(name)
                elif name in self.system.leads:
                    cls = self.system.leader_cls(name)
                else:
                    cls = self.system.get_app_cls(name)
                self.apps[name] = cls(env=self.env)
            _check_distinct_databases(self.apps)
        except BaseException:
            self._close_apps()
            raise

    def _follow_and_lead(
        self, receiver: Callable[[str], RecordingEventReceiver[Any]] | None
    ) -> None:
        """Followers follow their leaders' logs; leaders prompt ``receiver(name)``."""
        for leader_name, follower_name in self.system.edges:
            leader, follower = self.apps[leader_name], self._follower(follower_name)
            log = LocalNotificationLog(
                leader.recorder, section_size=follower.pull_section_size
            )
            follower.follow(leader_name, log)
        if receiver is None:
            return
        for leader_name in self.system.leaders:
            leader = cast(Leader[Any], self.apps[leader_name])
            receivers: list[RecordingEventReceiver[Any]] = []
            for follower_name in self.system.leads[leader_name]:
                prompted = receiver(follower_name)
                if all(prompted is not r for r in receivers):
                    receivers.append(prompted)
            for prompted in receivers:
                leader.lead(prompted)

    def _follower(self, name: str) -> Follower[Any]:
        return cast(Follower[Any], self.apps[name])

    def _close_apps(self) -> None:
        apps, self.apps = self.apps, {}
        for app in apps.values():
            app.close()

    def __enter__(self) -> Self:
        self.start()
        return self


def _check_distinct_databases(apps: Mapping[str, Application[Any]]) -> None:
    """Refuse two applications in one SQLite database: their tables would be
    shared. Files are compared as files (device and inode: ``a.db``,
    ``./a.db`` and a symlink to it are one), and shared-cache in-memory
    databases by name (``file::memory:?cache=shared`` is one per process)."""
    seen: dict[tuple[object, ...], tuple[str, str]] = {}
    for name, app in apps.items():
        database = getattr(app.factory, "database", None)
        key = _database_key(database)
        if key is None:
            continue
        path = str(getattr(database, "path", ""))
        other, other_path = seen.setdefault(key, (name, path))
        if other != name:
            same = repr(path) if path == other_path else f"{other_path!r} and {path!r}"
            msg = (
                f"{other} and {name} would share one SQLite database ({same}), and "
                f"so its tables: give each its own, with {other.upper()}_SQLITE_DBNAME "
                f"and {name.upper()}_SQLITE_DBNAME"
            )
            raise SystemDefinitionError(msg)


def _database_key(database: object) -> tuple[object, ...] | None:
    """What identifies an SQLite database in this process (None: unshared)."""
    path = getattr(database, "path", None)
    if not isinstance(path, str):
        return None
    if getattr(database, "is_memory", False):
        # ":memory:" and private in-memory URIs are each one connection's own.
        name, _, query = path.removeprefix("file:").partition("?")
        shared = path.startswith("file:") and "cache=shared" in query.split("&")
        return ("memory", name) if shared else None
    file_id = getattr(database, "file_id", None)
    if isinstance(file_id, tuple):
        return ("file", *file_id)
    return ("path", os.path.realpath(path))


def _last_unprocessed_id(
    leader: Application[Any], follower: Follower[Any], leader_name: str
) -> int | None:
    """The last notification of the leader the follower has yet to process."""
    position = follower.recorder.max_tracking_id(leader_name) or 0
    last = None
    while True:
        batch = leader.recorder.select_notifications(
            position, 1000, topics=follower.topics, inclusive_of_start=False
        )
        if not batch:
            return last
        last = position = batch[-1].id


def wait_until_processed(
    system: System,
    apps: Mapping[str, Application[Any]],
    timeout: float,
    check: Callable[[], None] | None = None,
    step: float = 0.25,
    partitions: Mapping[str, int] | None = None,
) -> None:
    """Block until each follower's tracking covers its leaders' (matching) events.

    Goes round the edges until a round finds nothing outstanding, so events
    that processing itself records (down a pipe, round a cycle) are waited
    for too. ``check`` is called every ``step`` seconds to raise errors.
    The followers in ``partitions`` are tracked per partition (that many).
    """
    from esox.system.partition import partitions_to_process

    partitions = partitions or {}
    deadline = time.monotonic() + timeout
    while True:
        outstanding = False
        for leader_name, follower_name in system.edges:
            follower = cast(Follower[Any], apps[follower_name])
            leader = apps[leader_name]
            if follower_name in partitions:
                targets = partitions_to_process(
                    leader, follower, leader_name, partitions[follower_name]
                )
            else:
                target = _last_unprocessed_id(leader, follower, leader_name)
                targets = {} if target is None else {leader_name: target}
            for tracking_name, target in targets.items():
                outstanding = True
                _wait_for_tracking(
                    follower, tracking_name, target, deadline, timeout, check, step
                )
        if not outstanding:
            if check is not None:
                check()
            return


def _wait_for_tracking(
    follower: Follower[Any],
    tracking_name: str,
    target: int,
    deadline: float,
    timeout: float,
    check: Callable[[], None] | None,
    step: float,
) -> None:
    while True:
        if check is not None:
            check()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            msg = (
                f"Timed out after {timeout}s waiting for {follower.name} "
                f"to process notification {target} of {tracking_name}"
            )
            raise TimeoutError(msg)
        if follower.recorder.wait_for_tracking(
            tracking_name, target, min(step, remaining)
        ):
            return


class SingleThreadedRunner(Runner[TAggregateID], RecordingEventReceiver[TAggregateID]):
    """Runs a system in the threads that call it: each save is processed
    by the followers, and theirs by their followers, before it returns.

    A policy's error is raised (as EventProcessingError) by the ``save()``
    that prompted it, after the other followers have had their turn.
    """

    def __init__(self, system: System, env: EnvType | None = None) -> None:
        super().__init__(system, env)
        self._prompts: deque[RecordingEvent[Any]] = deque()
        self._prompts_lock = threading.Lock()
        self._processing_lock = threading.Lock()
        self._construct_apps()

    def start(self) -> None:
        """Follow and lead, then process what was recorded before the start."""
        super().start()
        if not self.apps:
            self._construct_apps()
        self._follow_and_lead(lambda name: self)
        with self._processing_lock:
            for leader_name, follower_name in self.system.edges:
                self._follower(follower_name).pull_and_process(leader_name)
        self._process_prompts()

    def receive_recording_event(self, recording_event: RecordingEvent[Any]) -> None:
        """Queue the prompt; process the queue unless this thread is already."""
        with self._prompts_lock:
            self._prompts.append(recording_event)
        self._process_prompts()

    def _process_prompts(self) -> None:
        failed: dict[str, EventProcessingError] = {}
        while self._processing_lock.acquire(blocking=False):
            try:
                while True:
                    with self._prompts_lock:
                        if not self._prompts:
                            break
                        recording_event = self._prompts.popleft()
                    for name in self.system.leads[recording_event.application_name]:
                        if name in failed:
                            continue
                        try:
                            self._follower(name).process_recording_event(
                                recording_event
                            )
                        except EventProcessingError as e:
                            failed[name] = e
            finally:
                self._processing_lock.release()
            # Another thread may have queued a prompt as the lock was let go.
            with self._prompts_lock:
                if not self._prompts:
                    break
        if failed:
            raise next(iter(failed.values()))

    def stop(self) -> None:
        """Close the applications."""
        self._close_apps()
        self.is_started = False


class MultiThreadedRunner(Runner[TAggregateID]):
    """Runs each follower in its own thread, woken by its leaders' prompts.

    A follower's error stops its thread; it is raised by the runner's next
    ``get()``, ``wait()`` or ``stop()`` (as EventProcessingError, with the
    policy's exception as its cause).
    """

    def __init__(self, system: System, env: EnvType | None = None) -> None:
        super().__init__(system, env)
        self.threads: dict[str, FollowerThread] = {}
        self.has_errored = threading.Event()
        self._errors: list[EventProcessingError] = []
        self._construct_apps()

    def start(self) -> None:
        """Start a thread per follower; each first catches up with its leaders."""
        super().start()
        if not self.apps:
            self._construct_apps()
        for name in self.system.followers:
            self.threads[name] = FollowerThread(
                self._follower(name), self.system.follows[name], self._on_error
            )
        self._follow_and_lead(self.threads.__getitem__)
        for thread in self.threads.values():
            thread.start()

    def _on_error(self, error: EventProcessingError) -> None:
        self._errors.append(error)
        self.has_errored.set()

    def _raise_error(self) -> None:
        if self._errors:
            raise self._errors[0]

    def reraise_thread_errors(self) -> None:
        """Raise a follower's error, if one failed (eventsourcing's name)."""
        self._raise_error()

    def get(self, cls: type[TApplication]) -> TApplication:
        """The running instance of ``cls``; raises a follower's error first."""
        self._raise_error()
        return super().get(cls)

    def wait(self, timeout: float = 10.0) -> None:
        """Block until every follower has processed all its upstream events."""
        wait_until_processed(self.system, self.apps, timeout, check=self._raise_error)

    def watch_for_errors(self, timeout: float | None = None) -> bool:
        """Block until a follower fails (then stop, raising its error, as
        eventsourcing's runners do) or ``timeout`` passes (False)."""
        if not self.has_errored.wait(timeout=timeout):
            return False
        self.stop()
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads, close the applications, raise a follower's error."""
        threads, self.threads = list(self.threads.values()), {}
        for thread in threads:
            thread.stop()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._close_apps()
        self.is_started = False
        errors, self._errors = self._errors, []
        self.has_errored.clear()
        if errors:
            raise errors[0]


class FollowerThread(threading.Thread, RecordingEventReceiver[Any]):
    """Runs one follower: catches up with its leaders, then processes prompts.

    Prompts wait in an inbox; past ``max_inbox`` events it keeps just a note
    to pull from the log instead, so a slow follower never holds an unbounded
    backlog in memory.
    """

    max_inbox = 10_000

    def __init__(
        self,
        follower: Follower[Any],
        leader_names: list[str],
        on_error: Callable[[EventProcessingError], None],
    ) -> None:
        super().__init__(name=f"esox follower {follower.name}", daemon=True)
        self.follower = follower
        self.error: EventProcessingError | None = None
        self._on_error = on_error
        self._wakeup = threading.Condition()
        self._inbox: deque[RecordingEvent[Any]] = deque()
        self._inbox_size = 0
        self._pulls: set[str] = set(leader_names)  # catch up first
        self._stopping = threading.Event()

    def receive_recording_event(self, recording_event: RecordingEvent[Any]) -> None:
        """Queue a leader's prompt and wake the thread."""
        with self._wakeup:
            if self._inbox_size + len(recording_event.recordings) > self.max_inbox:
                self._pulls.add(recording_event.application_name)
            else:
                self._inbox.append(recording_event)
                self._inbox_size += len(recording_event.recordings)
            self._wakeup.notify()

    def stop(self) -> None:
        """Ask the thread to finish (after the event it is processing)."""
        self._stopping.set()
        with self._wakeup:
            self._wakeup.notify()

    def run(self) -> None:
        try:
            while True:
                with self._wakeup:
                    while not (self._inbox or self._pulls or self._stopping.is_set()):
                        self._wakeup.wait()
                    if self._stopping.is_set():
                        return
                    pulls, self._pulls = sorted(self._pulls), set()
                    inbox, self._inbox = self._inbox, deque()
                    self._inbox_size = 0
                for leader_name in pulls:
                    self.follower._pull_and_process(
                        leader_name, interrupt=self._stopping
                    )
                for recording_event in inbox:
                    if self._stopping.is_set():
                        return
                    self.follower.process_recording_event(recording_event)
        except Exception as e:
            error = (
                e if isinstance(e, EventProcessingError) else _wrap(self.follower, e)
            )
            self.error = error
            logger.error("Follower thread of %s stopped: %s", self.follower.name, error)
            self._on_error(error)


def _wrap(follower: Follower[Any], e: Exception) -> EventProcessingError:
    error = EventProcessingError(f"{follower.name} failed: {type(e).__name__}: {e}")
    error.__cause__ = e
    return error
