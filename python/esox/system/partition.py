"""Partitioned processing: one follower run as several processes, each with a share.

The upstream's events are split into ``partitions`` (a fixed count, 64 say)
by originator id, with a stable hash, so an aggregate's events are all in
one partition and are processed in their order. Each partition has its own
tracking position, recorded under the name ``<upstream>#<p>/<partitions>``
in the follower's tracking table, in the same transaction as the events its
processing records: exactly-once, as for an unpartitioned follower. The
partitions are leased in PostgreSQL (``esox.postgres.leases``): each process
holds a share, renews it by a heartbeat, and the survivors take over the
partitions of a process that stops renewing.

The unpartitioned tracking row (``<upstream>``) is left as it is: a partition
without a position of its own starts from it, so a follower that ran as one
process can be restarted partitioned and carry on where it was.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from esox.application import Application
from esox.persistence import IntegrityError, Notification, Tracking, TrackingRecorder
from esox.system.errors import SystemDefinitionError
from esox.system.follower import Follower

if TYPE_CHECKING:
    from esox.postgres.leases import PartitionLeases

__all__ = [
    "LeaseKeeper",
    "PartitionedFollower",
    "partition_of",
    "partition_tracking_name",
    "partitioned",
    "partitions_to_process",
    "recorded_position",
]

logger = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 6.0
"""Seconds a lease lasts unless renewed: a killed process's partitions are
taken over within this and a heartbeat interval (a third of it)."""

# Times a policy is run again when the events it collected conflict with
# another process's (two partitions' events updating one downstream aggregate).
CONFLICT_RETRIES = 5


def partition_of(originator_id: UUID | str, partitions: int) -> int:
    """The partition of an aggregate's events: the first 32 bits of the MD5 of its
    id as text, modulo ``partitions`` (in SQL: ``('x' || left(md5(originator_id::text),
    8))::bit(32)::bigint % partitions``), the same on every host and version."""
    digest = hashlib.md5(str(originator_id).encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % partitions


def partition_tracking_name(leader_name: str, partition: int, partitions: int) -> str:
    """The tracking name of one partition of ``leader_name``'s log."""
    return f"{leader_name}#{partition}/{partitions}"


def recorded_position(
    recorder: TrackingRecorder, leader_name: str, partition: int, partitions: int
) -> int:
    """A partition's recorded position: its own tracking row, else the
    unpartitioned row of ``leader_name`` (where it started), else 0."""
    name = partition_tracking_name(leader_name, partition, partitions)
    position = recorder.max_tracking_id(name)
    if position is None:
        position = recorder.max_tracking_id(leader_name)
    return position or 0


def partitions_to_process(
    leader: Application[Any], follower: Follower[Any], leader_name: str, partitions: int
) -> dict[str, int]:
    """The partitions with events still to process: tracking name, and the
    last notification id of the partition (of the follower's topics)."""
    positions = {
        p: recorded_position(follower.recorder, leader_name, p, partitions)
        for p in range(partitions)
    }
    last: dict[int, int] = {}
    start = min(positions.values())
    while True:
        batch = leader.recorder.select_notifications(
            start, 1000, topics=follower.topics, inclusive_of_start=False
        )
        if not batch:
            break
        for n in batch:
            p = partition_of(n.originator_id, partitions)
            if n.id > positions[p]:
                last[p] = n.id
        start = batch[-1].id
    return {
        partition_tracking_name(leader_name, p, partitions): notification_id
        for p, notification_id in sorted(last.items())
    }


class LeaseKeeper:
    """Renews this process's leases in a thread, every third of their ttl.

    ``held()`` is the partitions to work on now: empty once the leases may
    have expired (a heartbeat failed and ttl passed), so a process cut off
    from the database stops taking work it may no longer hold.
    """

    def __init__(
        self,
        leases: PartitionLeases,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.leases = leases
        self.on_change = on_change
        self._held: frozenset[int] = frozenset()
        self._valid_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.interval = leases.ttl / 3

    def beat(self) -> bool:
        """One heartbeat; whether this process holds all it should."""
        started = time.monotonic()
        held = self.leases.heartbeat()
        # Leases expire ttl after the server's now(), which is after this.
        self._valid_until = started + self.leases.ttl
        if held != self._held:
            logger.info(
                "%s worker %s holds %d of %d partitions",
                self.leases.name,
                self.leases.worker_id,
                len(held),
                self.leases.partitions,
            )
            self._held = held
            if self.on_change is not None:
                self.on_change()
        return len(held) > 0

    def held(self) -> frozenset[int]:
        """The partitions this process may work on now."""
        if time.monotonic() >= self._valid_until:
            return frozenset()
        return self._held

    def start(self) -> None:
        """First heartbeat here (errors raised), then the others in a thread."""
        self.beat()
        self._thread = threading.Thread(
            target=self._run, name="esox lease keeper", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        wait = self._next_wait()
        while not self._stop.wait(wait):
            try:
                self.beat()
            except Exception as e:
                logger.warning(
                    "%s worker %s heartbeat failed: %s: %s",
                    self.leases.name,
                    self.leases.worker_id,
                    type(e).__name__,
                    e,
                )
                wait = min(1.0, self.interval)
                continue
            wait = self._next_wait()

    def _next_wait(self) -> float:
        # While this process lacks partitions it should hold (the others
        # release them at their next heartbeat), beat again sooner.
        short = self._held != self.leases.wanted
        return self.interval / 4 if short else self.interval

    def stop(self, *, release: bool = True) -> None:
        """Stop renewing; ``release`` the leases at once (a clean stop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._held = frozenset()
        self._valid_until = 0.0
        if release:
            try:
                self.leases.release()
            except Exception as e:
                logger.warning(
                    "%s worker %s could not release its leases (they expire "
                    "in %ss): %s",
                    self.leases.name,
                    self.leases.worker_id,
                    self.leases.ttl,
                    e,
                )


class PartitionedFollower:
    """Processes the partitions of its upstream logs that this process holds.

    ``pull_and_process(leader_name)`` catches up on the held partitions: it
    reads the log from the lowest position among them, and processes the
    events of each held partition after that partition's own position, each
    recorded with its partition's tracking.
    """

    def __init__(
        self,
        follower: Follower[Any],
        *,
        partitions: int,
        held: Callable[[], frozenset[int]],
    ) -> None:
        self.follower = follower
        self.partitions = partitions
        self.held = held
        self._positions: dict[str, dict[int, int]] = {}
        self._held_then: dict[str, frozenset[int]] = {}

    def tracking_name(self, leader_name: str, partition: int) -> str:
        """The name under which ``partition`` of ``leader_name`` is tracked."""
        return partition_tracking_name(leader_name, partition, self.partitions)

    def recorded_position(self, leader_name: str, partition: int) -> int:
        """The partition's recorded position (else the unpartitioned one, else 0)."""
        return recorded_position(
            self.follower.recorder, leader_name, partition, self.partitions
        )

    def _positions_of(self, leader_name: str, held: frozenset[int]) -> dict[int, int]:
        positions = self._positions.setdefault(leader_name, {})
        if self._held_then.get(leader_name) != held:
            # Partitions just gained may have moved on elsewhere: read them again.
            gained = held - self._held_then.get(leader_name, frozenset())
            for partition in list(positions):
                if partition not in held:
                    del positions[partition]
            for partition in gained:
                positions[partition] = self.recorded_position(leader_name, partition)
            self._held_then[leader_name] = held
        return positions

    def pull_and_process(
        self, leader_name: str, interrupt: threading.Event | None = None
    ) -> int:
        """Catch up on the held partitions of ``leader_name``; return how many
        events were processed. Returns early when the held partitions change."""
        held = self.held()
        if not held:
            return 0
        positions = self._positions_of(leader_name, held)
        start = min(positions.values())
        processed = 0
        follower = self.follower
        for batch in follower.pull_notifications(
            leader_name, start=start, inclusive_of_start=False
        ):
            mine = self._select(batch, held, positions)
            if mine:
                events = follower.convert_notifications(leader_name, mine)
                for (domain_event, _), notification in zip(events, mine, strict=True):
                    if self.held() != held:
                        return processed
                    processed += self._process(
                        leader_name, domain_event, notification, positions
                    )
            if (interrupt is not None and interrupt.is_set()) or self.held() != held:
                break
        return processed

    def _select(
        self,
        batch: Sequence[Notification],
        held: frozenset[int],
        positions: dict[int, int],
    ) -> list[Notification]:
        topics = self.follower.topics
        partitions = self.partitions
        return [
            n
            for n in batch
            if (not topics or n.topic in topics)
            and (p := partition_of(n.originator_id, partitions)) in held
            and n.id > positions[p]
        ]

    def _process(
        self,
        leader_name: str,
        domain_event: Any,
        notification: Notification,
        positions: dict[int, int],
    ) -> int:
        partition = partition_of(notification.originator_id, self.partitions)
        tracking = Tracking(self.tracking_name(leader_name, partition), notification.id)
        for attempt in range(CONFLICT_RETRIES + 1):
            if notification.id <= positions[partition]:
                return 0
            try:
                self.follower._process_tracked(domain_event, tracking)
            except IntegrityError:
                recorded = self.recorded_position(leader_name, partition)
                if recorded >= notification.id:
                    # Another process held this partition a moment ago and
                    # recorded this event: it is done, not to do again.
                    positions[partition] = recorded
                    return 0
                if attempt == CONFLICT_RETRIES:
                    raise
                # The policy's new events met another process's (one
                # downstream aggregate fed by two partitions): run it again.
                logger.info(
                    "%s: notification %d of %s conflicted with another "
                    "process's events; processing it again",
                    self.follower.name,
                    notification.id,
                    leader_name,
                )
                continue
            positions[partition] = notification.id
            return 1
        return 0


def partitioned(
    follower: Follower[Any],
    *,
    partitions: int,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    on_change: Callable[[], None] | None = None,
    worker_id: str | None = None,
) -> tuple[PartitionedFollower, LeaseKeeper]:
    """A partitioned follower and its lease keeper (not started), with the
    leases in the follower's own PostgreSQL database."""
    from esox.postgres.datastore import PostgresDatastore
    from esox.postgres.leases import PartitionLeases, check_partitions

    check_partitions(partitions)
    datastore = getattr(follower.factory, "datastore", None)
    if not isinstance(datastore, PostgresDatastore):
        msg = (
            f"{follower.name} keeps its events in "
            f"{type(follower.factory).__name__}: partitioned processing leases "
            "its partitions in PostgreSQL, so set PERSISTENCE_MODULE=esox.postgres "
            "for it"
        )
        raise SystemDefinitionError(msg)
    leases = PartitionLeases(
        datastore,
        name=follower.name,
        partitions=partitions,
        ttl=lease_ttl,
        worker_id=worker_id,
    )
    leases.create_tables()
    keeper = LeaseKeeper(leases, on_change=on_change)
    return PartitionedFollower(
        follower, partitions=partitions, held=keeper.held
    ), keeper
