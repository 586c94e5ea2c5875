"""The repository: aggregates reconstructed from their snapshots and events."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from esox.application.cache import Cache, LRUCache
from esox.domain import EventSourcingError
from esox.domain.protocols import TAggregateID
from esox.persistence import EventStore
from esox.persistence.replay import project_aggregate as fast_project_aggregate
from esox.persistence.replay import replay_aggregate

__all__ = ["AggregateNotFoundError", "Repository", "project_aggregate"]


class AggregateNotFoundError(EventSourcingError):
    """No events (at or below the requested version) for that aggregate id."""


def project_aggregate(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply events in order to an aggregate (or to None, for the first event)."""
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


TProjected = TypeVar("TProjected")
TProjectedEvent = TypeVar("TProjectedEvent")

ProjectorFunction = Callable[
    [TProjected | None, Iterable[TProjectedEvent]], TProjected | None
]
"""``(aggregate or None, events) -> aggregate or None``: how a repository
projects (``ProjectorFunction[Aggregate, Event]``)."""

MutatorFunction = Callable[[TProjectedEvent, TProjected | None], TProjected | None]
"""``(event, aggregate or None) -> aggregate or None``: one event's effect."""


class _AggregateLocks:
    """One lock per aggregate id in use, forgotten when nobody holds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[Any, tuple[threading.Lock, int]] = {}

    def acquire(self, key: Any, *, blocking: bool = True) -> bool:
        with self._lock:
            lock, users = self._locks.get(key, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._locks[key] = (lock, users + 1)
        if lock.acquire(blocking=blocking):
            return True
        self._forget(key)
        return False

    def release(self, key: Any) -> None:
        lock, _ = self._locks[key]
        lock.release()
        self._forget(key)

    def _forget(self, key: Any) -> None:
        with self._lock:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Repository(Generic[TAggregateID]):
    """Gets aggregates: latest snapshot at or below the version, then the events.

    With a cache (``cache_maxsize`` 0 for unbounded, N for least-recently-used),
    cached aggregates are brought up to date with any newer events
    (``fastforward``) and handed out as deep copies, so a caller's unsaved
    changes never leak into the cache.
    """

    def __init__(
        self,
        event_store: EventStore[TAggregateID],
        *,
        snapshot_store: EventStore[TAggregateID] | None = None,
        cache_maxsize: int | None = None,
        fastforward: bool = True,
        fastforward_skipping: bool = False,
        deepcopy_from_cache: bool = True,
    ) -> None:
        self.event_store: EventStore[TAggregateID] = event_store
        self.snapshot_store: EventStore[TAggregateID] | None = snapshot_store
        self.cache: Cache[TAggregateID, Any] | None
        if cache_maxsize is None:
            self.cache = None
        elif cache_maxsize <= 0:
            self.cache = Cache()
        else:
            self.cache = LRUCache(maxsize=cache_maxsize)
        self.fastforward = fastforward
        self.fastforward_skipping = fastforward_skipping
        self.deepcopy_from_cache = deepcopy_from_cache
        self._locks = _AggregateLocks()
        # Whether any get() has skipped the fast-forward lock (so readers may
        # copy a cached aggregate while it is being brought up to date).
        self._skipping_seen = fastforward_skipping

    def get(
        self,
        aggregate_id: TAggregateID,
        *,
        version: int | None = None,
        projector_func: ProjectorFunction[Any, Any] = project_aggregate,
        fastforward_skipping: bool = False,
        deepcopy_from_cache: bool = True,
    ) -> Any:
        """Reconstruct an aggregate, at ``version`` if given (else the latest)."""
        if isinstance(aggregate_id, str) and self._ids_are_uuids():
            aggregate_id = self._as_uuid(aggregate_id, version)  # type: ignore[assignment]
        if self.cache is None or version is not None:
            return self._reconstruct(aggregate_id, version, projector_func)
        skipping = fastforward_skipping or self.fastforward_skipping
        if skipping:
            self._skipping_seen = True
        if not self._locks.acquire(aggregate_id, blocking=not skipping):
            # Someone else is bringing it up to date: take what is cached.
            try:
                return self._copy(self.cache.get(aggregate_id), deepcopy_from_cache)
            except KeyError:
                self._locks.acquire(aggregate_id)
        try:
            try:
                aggregate = self.cache.get(aggregate_id)
            except KeyError:
                aggregate = self._reconstruct(aggregate_id, None, projector_func)
                if aggregate.id != aggregate_id:  # a str spelling a UUID id
                    return aggregate
                self.cache.put(aggregate_id, aggregate)
            else:
                if self.fastforward:
                    new_events = self.event_store.get(
                        aggregate_id, gt=aggregate.version
                    )
                    if new_events:
                        project = (
                            fast_project_aggregate
                            if projector_func is project_aggregate
                            else projector_func
                        )
                        aggregate = self._fastforward(
                            aggregate_id, aggregate, new_events, project
                        )
            return self._copy(aggregate, deepcopy_from_cache)
        finally:
            self._locks.release(aggregate_id)

    def _fastforward(
        self,
        aggregate_id: Any,
        cached: Any,
        new_events: Sequence[Any],
        project: ProjectorFunction[Any, Any],
    ) -> Any:
        """Apply new events to the cached aggregate (holding its lock).

        In place, as eventsourcing does (the cached object stays the one
        object), unless readers that skip the lock have been seen: they may be
        copying it right now, so a copy is brought up to date and swapped in.
        An apply that raises never leaves a half-applied aggregate cached.
        """
        assert self.cache is not None
        target = deepcopy(cached) if self._skipping_seen else cached
        try:
            aggregate = project(target, new_events)
        except BaseException:
            if target is cached:
                self.cache.get(aggregate_id, evict=True)
            raise
        if aggregate is None:
            msg = f"Aggregate {aggregate_id!r} not found."
            raise AggregateNotFoundError(msg)
        if aggregate is not cached:
            self.cache.put(aggregate_id, aggregate)
        return aggregate

    @property
    def _fastforward_locks_inuse(self) -> dict[Any, tuple[threading.Lock, int]]:
        """The aggregates whose cached copy someone is bringing up to date (or
        waiting to): id -> (lock, number of users), under eventsourcing's name."""
        return self._locks._locks

    @property
    def caches_saved(self) -> bool:
        """Whether saved aggregates go into the cache: there is one, and it
        is not fast-forwarded from the store instead."""
        return self.cache is not None and not self.fastforward

    def cache_saved(self, aggregates: Iterable[Any]) -> None:
        """Put just-saved aggregates in the cache (when not fast-forwarding)."""
        cache = self.cache if self.caches_saved else None
        if cache is None:
            return
        for aggregate in aggregates:
            self._locks.acquire(aggregate.id)
            try:
                cache.put(aggregate.id, deepcopy(aggregate))
            finally:
                self._locks.release(aggregate.id)

    def _copy(self, aggregate: Any, deepcopy_from_cache: bool) -> Any:
        if deepcopy_from_cache and self.deepcopy_from_cache:
            return deepcopy(aggregate)
        return aggregate

    def _ids_are_uuids(self) -> bool:
        """Whether the recorder stores only UUID ids (ORIGINATOR_ID_TYPE=uuid)."""
        id_type = getattr(self.event_store.recorder, "originator_id_type", None)
        return id_type == "uuid"

    @staticmethod
    def _as_uuid(aggregate_id: str, version: int | None) -> UUID:
        """The UUID a str id spells, or AggregateNotFoundError: where ids are
        UUIDs, a str that spells none names no aggregate."""
        try:
            return UUID(aggregate_id)
        except ValueError:
            msg = (
                f"Aggregate {aggregate_id!r} version {version!r} not found: "
                "this application's aggregate ids are UUIDs (ORIGINATOR_ID_TYPE="
                "uuid), and that str spells none"
            )
            raise AggregateNotFoundError(msg) from None

    def _reconstruct(
        self,
        aggregate_id: TAggregateID,
        version: int | None,
        projector_func: ProjectorFunction[Any, Any],
    ) -> Any:
        """The aggregate; a str id that is not stored as such but spells a
        UUID finds the aggregate of that UUID (ids are compared by value)."""
        try:
            return self._reconstruct_as(aggregate_id, version, projector_func)
        except AggregateNotFoundError as e:
            if not isinstance(aggregate_id, str):
                raise
            try:
                as_uuid = UUID(aggregate_id)
            except ValueError:
                raise e from None
        try:
            return self._reconstruct_as(
                cast(TAggregateID, as_uuid), version, projector_func
            )
        except AggregateNotFoundError:
            msg = f"Aggregate {aggregate_id!r} version {version!r} not found."
            raise AggregateNotFoundError(msg) from None

    def _reconstruct_as(
        self,
        aggregate_id: TAggregateID,
        version: int | None,
        projector_func: ProjectorFunction[Any, Any],
    ) -> Any:
        gt: int | None = None
        snapshots: list[Any] = []
        if self.snapshot_store is not None:
            snapshots = self.snapshot_store.get(
                aggregate_id, desc=True, limit=1, lte=version
            )
            if snapshots:
                gt = snapshots[0].originator_version
        if projector_func is project_aggregate:
            # One Rust call: select, decode and apply the whole stream.
            initial = snapshots[0].mutate(None) if snapshots else None
            aggregate = replay_aggregate(
                self.event_store, aggregate_id, initial=initial, gt=gt, lte=version
            )
        else:
            # A projector of its own gets the snapshot as the first "event",
            # as eventsourcing gives it (it may be a snapshot of its own kind).
            events: list[Any] = self.event_store.get(aggregate_id, gt=gt, lte=version)
            aggregate = projector_func(None, [*snapshots, *events])
        if aggregate is None:
            msg = f"Aggregate {aggregate_id!r} version {version!r} not found."
            raise AggregateNotFoundError(msg)
        return aggregate

    def __contains__(self, aggregate_id: TAggregateID) -> bool:
        try:
            self.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True
