"""Stored events for the recorder tests: one of an aggregate's events, or a
stream of its versions; each one's state says which version it is."""

from __future__ import annotations

from uuid import UUID

from esox.persistence import StoredEvent


def event(originator_id: UUID | str, version: int, topic: str = "t:E") -> StoredEvent:
    return StoredEvent(originator_id, version, topic, f"state {version}".encode())


def stream(
    originator_id: UUID | str, versions: range, topic: str = "t:E"
) -> list[StoredEvent]:
    return [event(originator_id, v, topic) for v in versions]
