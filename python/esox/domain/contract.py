"""The replay contract: what ``esox._core``'s replay reads of esox.domain.

Rust replays an aggregate's events without calling each event's ``mutate``
when that is esox's own: it reads the private attributes named here and does
what the functions in ``REIMPLEMENTED`` do (rust/replay.rs). This module is
the one place that lists them; ``esox.persistence.binding`` hands ``NAMES``
and ``objects()`` to the crate, which takes exactly these keys (a key missing
or unknown fails the bind). tests/test_replay_contract.py checks that each
name is where Rust looks for it and that no re-implemented function changed
without Rust (its source's fingerprint is pinned in ``REIMPLEMENTED``).
"""

from __future__ import annotations

from typing import Any

from esox.domain import events
from esox.domain.aggregate import BaseAggregate
from esox.domain.decorators import DecoratedFuncCaller
from esox.utils import resolve_topic

__all__ = ["NAMES", "REIMPLEMENTED", "objects"]

NAMES: dict[str, str] = {
    # Read from each event (its __dict__, when its class reads attributes
    # plainly), and the methods whose identity decides Rust or Python.
    "originator_id": "originator_id",
    "originator_version": "originator_version",
    "timestamp": "timestamp",
    "originator_topic": "originator_topic",
    "mutate": "mutate",
    "apply": "apply",
    "as_dict": "_as_dict",
    # The event class of an @event-decorated method, and its MethodSpec.
    "decorated_spec": "_decorated_spec_",
    "spec_func": "func",
    "spec_names": "names",
    # The aggregate class, as set by esox.domain.preparation.set_init.
    "init_params": "_init_params_",
    "init_func": "_init_func_",
    "init_mentions_id": "_init_mentions_id_",
    "init_spec": "_init_spec_",
    "spec_factories": "factories",
    "base_init": "__base_init__",
    # The aggregate's own state, behind its id, version and modified_on.
    "id": "_id",
    "version": "_version",
    "modified_on": "_modified_on",
}
"""Role (the key Rust reads) → attribute name."""


def objects() -> dict[str, Any]:
    """Role → the function or class Rust compares with, re-implements or calls."""
    return {
        "can_mutate_mutate": events.CanMutateAggregate.mutate,
        "created_mutate": events.AggregateCreated.mutate,
        "base_apply": events.CanMutateAggregate.apply,
        "base_as_dict": events.CanMutateAggregate._as_dict,
        "decorated_apply": DecoratedFuncCaller.apply,
        "decorated_caller": DecoratedFuncCaller,
        "snapshot": events.Snapshot,
        "base_aggregate": BaseAggregate,
        "id_error": events.OriginatorIDError,
        "version_error": events.OriginatorVersionError,
        "not_an_aggregate_class": events.not_an_aggregate_class,
        "missing_arguments_error": events.missing_arguments_error,
    }


REIMPLEMENTED: dict[str, str] = {
    "esox.domain.events:CanMutateAggregate.mutate": "4f24f51a20ad515c",
    "esox.domain.events:CanMutateAggregate.apply": "480db3891191a88b",
    "esox.domain.events:CanMutateAggregate._as_dict": "bb529e2a157afafd",
    "esox.domain.events:CanInitAggregate.mutate": "288c3b70b9a3e34a",
    "esox.domain.events:resolve_aggregate_class": "af751aa4e0544af6",
    "esox.domain.decorators:DecoratedFuncCaller.apply": "79d23a70a1c14414",
    "esox.domain.aggregate:BaseAggregate.__base_init__": "b3f614d63eb52739",
    "esox.domain.aggregate:BaseAggregate.id": "97813923560fe4d0",
    "esox.domain.aggregate:BaseAggregate.version": "0a2c2c80466d4ce3",
    "esox.domain.aggregate:BaseAggregate.modified_on": "cdd396b3dc20288c",
}
"""Topic of each function (or property) that rust/replay.rs does itself, or
relies on, → the first 16 hex digits of the SHA-256 of its source. When one
changes, change Rust to match, then its fingerprint here."""


def fingerprint(topic: str) -> str:
    """The fingerprint of the source of what ``topic`` names (see REIMPLEMENTED)."""
    import hashlib
    import inspect

    module, _, path = topic.partition(":")
    owner, _, attribute = path.rpartition(".")
    found: Any = resolve_topic(f"{module}:{owner}") if owner else None
    obj = vars(found)[attribute] if found is not None else resolve_topic(topic)
    parts = [obj.fget, obj.fset] if isinstance(obj, property) else [obj]
    source = "".join(inspect.getsource(p) for p in parts if p is not None)
    return hashlib.sha256(source.encode()).hexdigest()[:16]
