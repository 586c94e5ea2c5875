"""Property tests of recorder invariants, on memory and SQLite.

Random sequences of batches, some of which conflict: accepted batches are
stored whole, refused ones not at all, and the notification sequence stays a
gap-free, ordered account of exactly the accepted events.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from esox.persistence import InfrastructureFactory, IntegrityError, StoredEvent
from esox.utils import Environment

ORIGINATORS = [uuid.UUID(int=i + 1) for i in range(4)]

batches = st.lists(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 6), st.sampled_from("AB")),
        min_size=0,
        max_size=5,
    ),
    min_size=1,
    max_size=12,
)


def check_invariants(
    env: dict[str, str], plan: list[list[tuple[int, int, str]]]
) -> None:
    factory = InfrastructureFactory.construct(Environment("props", env))
    recorder = factory.application_recorder()
    accepted: dict[tuple[uuid.UUID, int], StoredEvent] = {}
    expected_order: list[StoredEvent] = []
    try:
        for batch in plan:
            events = [
                StoredEvent(ORIGINATORS[o], v, f"t:{topic}", f"{o}-{v}".encode())
                for o, v, topic in batch
            ]
            keys = [(e.originator_id, e.originator_version) for e in events]
            should_conflict = len(set(keys)) != len(keys) or any(
                k in accepted for k in keys
            )
            try:
                ids = recorder.insert_events(events)
            except IntegrityError:
                assert should_conflict, f"refused a valid batch {keys}"
                continue
            assert not should_conflict, f"accepted a conflicting batch {keys}"
            ids = list(ids or [])
            assert ids == list(
                range(len(expected_order) + 1, len(expected_order) + 1 + len(events))
            )
            for key, event in zip(keys, events, strict=True):
                accepted[key] = event
            expected_order.extend(events)

        notifications = recorder.select_notifications(None, 1000)
        assert [n.id for n in notifications] == list(range(1, len(expected_order) + 1))
        assert [
            (n.originator_id, n.originator_version, n.state) for n in notifications
        ] == [(e.originator_id, e.originator_version, e.state) for e in expected_order]
        assert (recorder.max_notification_id() or 0) == len(expected_order)
        for topic in "AB":
            selected = recorder.select_notifications(None, 1000, topics=[f"t:{topic}"])
            assert all(n.topic == f"t:{topic}" for n in selected)
            assert len(selected) == sum(e.topic == f"t:{topic}" for e in expected_order)
        for originator in ORIGINATORS:
            versions = [
                s.originator_version for s in recorder.select_events(originator)
            ]
            assert versions == sorted(v for (o, v) in accepted if o == originator)
    finally:
        factory.close()


@settings(max_examples=150, deadline=None)
@given(plan=batches)
def test_memory_recorder_invariants(plan: list[list[tuple[int, int, str]]]) -> None:
    check_invariants({"PERSISTENCE_MODULE": "esox.memory"}, plan)


@settings(max_examples=60, deadline=None)
@given(plan=batches)
def test_sqlite_recorder_invariants(plan: list[list[tuple[int, int, str]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "PERSISTENCE_MODULE": "esox.sqlite",
            "SQLITE_DBNAME": str(Path(tmp) / "props.sqlite"),
            "SQLITE_SYNCHRONOUS": "NORMAL",
        }
        check_invariants(env, plan)
