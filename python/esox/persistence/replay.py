"""Aggregate replay in one Rust call: select, decode and apply a whole stream.

The result is what ``project_aggregate(initial, event_store.get(...))`` gives
(same aggregate, same errors), only faster: events of esox's own classes are
checked and applied in Rust, anything custom is called as usual.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from esox import _core
from esox.domain import Snapshot
from esox.persistence.eventstore import EventStore
from esox.persistence.mapper import overrides_decoding

__all__ = ["project_aggregate", "replay_aggregate"]


def project_aggregate(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply domain events in order to ``aggregate`` (None before the first)."""
    return _core.project_aggregate(aggregate, events)


def replay_aggregate(
    event_store: EventStore[Any],
    originator_id: UUID | str,
    *,
    initial: Any = None,
    gt: int | None = None,
    lte: int | None = None,
) -> Any:
    """Reconstruct an aggregate from its events with versions in (gt, lte].

    ``initial`` is where to start: an aggregate (at version ``gt``), a
    ``Snapshot`` (``gt`` defaults to its version) or None (from the created
    event). Returns None if there is nothing to reconstruct.
    """
    if type(event_store).get is not EventStore.get or overrides_decoding(
        event_store.mapper
    ):
        # A customised event store or mapper: let it choose and decode events.
        if isinstance(initial, Snapshot):
            if gt is None:
                gt = initial.originator_version
            initial = initial.mutate(None)
        events = event_store.get(originator_id, gt=gt, lte=lte)
        return _core.project_aggregate(initial, events)
    return _core.replay(
        event_store.mapper,
        event_store.recorder,
        originator_id,
        gt=gt,
        lte=lte,
        initial=initial,
    )
