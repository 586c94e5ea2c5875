"""LISTEN and NOTIFY: the threads that wake waiters when writers commit.

A datastore has one of each, started on first use: a ``Listener`` with a
connection of its own that LISTENs on the channels waiters wait on, and a
``Notifier`` that sends writers' NOTIFYs after their commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from psycopg.pq import ExecStatus

from esox.persistence.errors import InterfaceError

if TYPE_CHECKING:
    from esox.postgres.datastore import Connection

__all__ = ["Listener", "Notifier"]

logger = logging.getLogger(__name__)


class Listener:
    """One LISTEN connection per datastore, waking threads that wait on channels.

    Each channel has a generation number, bumped by every NOTIFY on it, and
    also whenever a notification may have been missed (LISTEN just started,
    the connection was lost). A waiter reads the generation, checks the
    database, and then waits for the generation to change. Waits are capped
    (``poll_interval`` while listening, 50ms while LISTEN is not in place),
    so a lost NOTIFY delays a waiter, never blocks it. Without ``listen``
    (poll-only mode) no LISTEN connection is opened: waits last
    ``poll_interval`` at most.
    """

    POLL_INTERVAL = 1.0
    FALLBACK_POLL_INTERVAL = 0.05
    LOOP_TIMEOUT = 0.25

    def __init__(
        self,
        connect: Callable[[], Connection],
        *,
        listen: bool = True,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._connect = connect
        self.listen = listen
        self.poll_interval = poll_interval
        self._cond = threading.Condition()
        self._generations: dict[str, int] = {}
        self._listening: frozenset[str] = frozenset()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def generation(self, channel: str) -> int:
        """The channel's current generation; starts listening to it."""
        with self._cond:
            if self._closed.is_set():
                msg = "the datastore is closed"
                raise InterfaceError(msg)
            generation = self._generations.setdefault(channel, 0)
            if self._thread is None and self.listen:
                self._thread = threading.Thread(
                    target=self._run, name="esox-postgres-listener", daemon=True
                )
                self._thread.start()
            return generation

    def wait(
        self,
        channel: str,
        generation: int,
        timeout: float,
        interrupt: threading.Event | None = None,
    ) -> None:
        """Return when ``channel`` passed ``generation``, or a poll interval ends."""
        with self._cond:
            if channel in self._listening or not self.listen:
                timeout = min(timeout, self.poll_interval)
            else:
                timeout = min(timeout, self.FALLBACK_POLL_INTERVAL, self.poll_interval)
            self._cond.wait_for(
                lambda: (
                    self._generations.get(channel) != generation
                    or self._closed.is_set()
                    or (interrupt is not None and interrupt.is_set())
                ),
                timeout=max(timeout, 0.0),
            )

    def wait_until(
        self,
        channel: str,
        timeout: float,
        ready: Callable[[], bool | None],
        *,
        soon: float = FALLBACK_POLL_INTERVAL,
    ) -> bool:
        """Whether ``ready()`` became true within ``timeout``: asked again
        whenever ``channel`` is notified, and at every poll; a ``ready`` that
        returns None (not yet, and no NOTIFY may say when) is asked again
        within ``soon`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            generation = self.generation(channel)
            found = ready()
            if found:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.wait(
                channel,
                generation,
                min(remaining, soon) if found is None else remaining,
            )

    def poke(self) -> None:
        """Wake every waiter (to notice an interrupt)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self._closed.set()
        self.poke()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.LOOP_TIMEOUT * 4)

    def _bump(self, channels: set[str] | None) -> None:
        with self._cond:
            for channel in self._generations if channels is None else channels:
                if channel in self._generations:
                    self._generations[channel] += 1
            self._cond.notify_all()

    def _run(self) -> None:
        delay = 0.05
        while not self._closed.is_set():
            try:
                conn = self._connect()
            except psycopg.Error:
                logger.debug("LISTEN connection failed", exc_info=True)
            else:
                delay = 0.05
                try:
                    with conn:
                        self._listen(conn)
                except psycopg.Error:
                    logger.debug("LISTEN connection lost", exc_info=True)
                finally:
                    with self._cond:
                        self._listening = frozenset()
                    # Whatever was notified meanwhile is unknown: waiters recheck.
                    self._bump(None)
            if self._closed.wait(delay):
                return
            delay = min(delay * 2, 2.0)

    def _listen(self, conn: Connection) -> None:
        listening: set[str] = set()
        while not self._closed.is_set():
            with self._cond:
                new = set(self._generations) - listening
            for channel in sorted(new):
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                listening.add(channel)
            if new:
                with self._cond:
                    self._listening = frozenset(listening)
                # Something may have been committed before LISTEN took effect.
                self._bump(new)
            for notify in conn.notifies(timeout=self.LOOP_TIMEOUT):
                self._bump({notify.channel})
                if self._closed.is_set() or len(self._generations) > len(listening):
                    break


class Notifier:
    """Sends NOTIFYs after the writers' commits, from a thread and connection
    of its own.

    A NOTIFY inside a writing transaction takes PostgreSQL's database-wide
    notify lock at commit and holds it through the commit's WAL flush, so
    notifying writers cannot share a flush: they commit one at a time. Sent
    afterwards, in a transaction that writes nothing, it costs no flush.
    Channels that writers ask for meanwhile are sent together. A NOTIFY that
    is lost (the connection fails) only delays waiters until their next poll.
    """

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._sending = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None

    def notify(self, channels: Iterable[str]) -> None:
        """Queue ``channels`` to be notified (at once, if the thread is idle)."""
        with self._cond:
            if self._closed:
                return
            self._pending.update(channels)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="esox-postgres-notifier", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        """Send what is pending, then stop the thread and close its connection."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._closed)
                channels, self._pending = sorted(self._pending), set()
                closed = self._closed
            if channels:
                self._send(channels)
            if closed:
                with self._cond:
                    if not self._pending:
                        break
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(psycopg.Error):
                conn.close()

    def _send(self, channels: list[str]) -> None:
        # One simple query straight through libpq: a cursor's machinery
        # would cost the writers' process more CPU than the NOTIFY itself.
        query = "; ".join(
            sql.SQL("NOTIFY {}").format(sql.Identifier(c)).as_string(None)
            for c in channels
        ).encode()
        for attempt in range(2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                result = self._conn.pgconn.exec_(query)
                if result.status != ExecStatus.COMMAND_OK:
                    raise psycopg.OperationalError(result.get_error_message())
            except psycopg.Error:
                logger.debug("NOTIFY failed (attempt %d)", attempt + 1, exc_info=True)
                if self._conn is not None:
                    with suppress(psycopg.Error):
                        self._conn.close()
                    self._conn = None
            else:
                return
