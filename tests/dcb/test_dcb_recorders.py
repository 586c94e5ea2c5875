"""The contract of esox's DCB recorders, run on each of them (in memory,
SQLite and PostgreSQL): query matching, heads, conditional appends and their
atomicity under racing threads, subscriptions, and bad input."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esox.dcb.api import (
    DCBAppendCondition,
    DCBEvent,
    DCBQuery,
    DCBQueryItem,
    DCBSequencedEvent,
)
from esox.dcb.memory import InMemoryDCBRecorder
from esox.dcb.postgres import PostgresDCBRecorder
from esox.dcb.sqlite import SqliteDCBRecorder
from esox.persistence import IntegrityError, ProgrammingError
from tests.persistence_envs import postgres_datastore, postgres_schema

Recorder = InMemoryDCBRecorder | SqliteDCBRecorder | PostgresDCBRecorder


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def recorder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Recorder]:
    if request.param == "memory":
        yield InMemoryDCBRecorder()
    elif request.param == "sqlite":
        recorder = SqliteDCBRecorder(str(tmp_path / "dcb.db"), synchronous="NORMAL")
        yield recorder
        recorder.database.close()
    else:
        with postgres_schema() as schema:
            datastore = postgres_datastore(schema, pool_size=2, max_overflow=24)
            recorder = PostgresDCBRecorder(datastore)
            recorder.create_table()
            yield recorder
            datastore.close()


def event(type_: str = "T", *tags: str, data: bytes = b"") -> DCBEvent:
    return DCBEvent(type=type_, data=data, tags=list(tags))


def query(*items: tuple[list[str], list[str]]) -> DCBQuery:
    return DCBQuery(items=[DCBQueryItem(types=t, tags=g) for t, g in items])


def positions(recorder: Recorder, q: DCBQuery | None = None, **kw: Any) -> list[int]:
    return [e.position for e in recorder.read(q, **kw)]


def test_reads_match_types_and_all_tags_and_return_esox_objects(recorder: Recorder):
    assert (
        recorder.append([event("A", "x"), event("B", "x", "y"), event("C", "y")]) == 3
    )
    assert recorder.append([event("A", data=b"\x00\xff")]) == 4
    assert positions(recorder) == [1, 2, 3, 4]
    assert positions(recorder, query((["A"], []))) == [1, 4]
    assert positions(recorder, query(([], ["x", "y"]))) == [2]
    assert positions(recorder, query((["B", "C"], ["y"]))) == [2, 3]
    assert positions(recorder, query((["C"], ["x"]))) == []
    assert positions(recorder, query(([], ["nope"]))) == []
    # Items are alternatives; each event once, ascending.
    assert positions(recorder, query(([], ["y"]), (["A"], []))) == [1, 2, 3, 4]
    # An item with no types and no tags matches every event, as in eventsourcing.
    assert positions(recorder, query(([], [])), after=2) == [3, 4]
    (last,) = recorder.read(after=3)
    assert last == DCBSequencedEvent(event=event("A", data=b"\x00\xff"), position=4)


def test_head_is_the_last_position_or_with_a_limit_the_last_read(recorder: Recorder):
    assert recorder.read().head is None
    recorder.append([event("A"), event("B"), event("A")])
    response = recorder.read(query((["B"], [])))
    assert [e.position for e in response] == [2]
    assert response.head == 3
    response = recorder.read(query((["A"], [])), limit=1)
    assert [e.position for e in response] == [1]
    assert response.head == 1
    assert recorder.read(limit=0).head is None
    assert recorder.read(after=3).head == 3


def test_a_failed_condition_records_nothing(recorder: Recorder):
    recorder.append([event("A", "x")])
    boundary = query(([], ["x"]))
    with pytest.raises(IntegrityError, match="position 1"):
        recorder.append([event("B", "x")], DCBAppendCondition(boundary))
    recorder.append([event("B", "x")], DCBAppendCondition(boundary, after=1))
    with pytest.raises(IntegrityError):
        recorder.append([event("C")], DCBAppendCondition(boundary, after=1))
    assert positions(recorder) == [1, 2]


def test_racing_conditional_appends_exactly_the_non_conflicting_ones_win(
    recorder: Recorder,
):
    recorder.append([event("Opened", f"course{c}") for c in range(4)])
    threads_per_course = 6
    rounds = 20
    winners: list[tuple[int, int]] = []
    losers: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4 * threads_per_course)

    def client(course: int, student: int) -> None:
        boundary = query(([], [f"course{course}"]))
        try:
            for round_ in range(rounds):
                head = recorder.read(boundary).head
                barrier.wait()  # everyone has read before anyone appends
                try:
                    recorder.append(
                        [event("Joined", f"course{course}", f"student{student}")],
                        DCBAppendCondition(boundary, after=head),
                    )
                except IntegrityError:
                    with lock:
                        losers.append((round_, course))
                else:
                    with lock:
                        winners.append((round_, course))
                barrier.wait()
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [
        threading.Thread(target=client, args=(c, c * threads_per_course + s))
        for c in range(4)
        for s in range(threads_per_course)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Exactly one winner per course per round: the boundaries of different
    # courses do not overlap, those of one course do.
    assert sorted(winners) == [(r, c) for r in range(rounds) for c in range(4)]
    assert len(losers) == rounds * 4 * (threads_per_course - 1)
    assert positions(recorder) == list(range(1, 4 + rounds * 4 + 1))


def test_a_subscription_wakes_on_a_matching_append_and_stops(recorder: Recorder):
    recorder.append([event("A", "x"), event("A", "y")])
    received: list[int] = []
    got_one = threading.Event()
    with recorder.subscribe(query(([], ["x"]))) as subscription:

        def consume() -> None:
            for sequenced in subscription:
                received.append(sequenced.position)
                got_one.set()

        thread = threading.Thread(target=consume)
        thread.start()
        assert got_one.wait(timeout=10)
        got_one.clear()
        recorder.append([event("B", "y")])  # not matching: wakes, finds nothing
        recorder.append([event("B", "x")])
        assert got_one.wait(timeout=10)
        assert received == [1, 4]
    # Leaving the context stops the subscription and wakes the blocked consumer.
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert received == [1, 4]


def test_a_subscription_stopped_from_another_thread_ends_its_iteration(
    recorder: Recorder,
):
    subscription = recorder.subscribe(after=0)
    ended = threading.Event()

    def consume() -> None:
        for _ in subscription:
            pass
        ended.set()

    thread = threading.Thread(target=consume)
    thread.start()
    subscription.stop()
    assert ended.wait(timeout=10)
    with pytest.raises(StopIteration):
        next(subscription)


def test_a_subscription_is_entered_once(recorder: Recorder):
    subscription = recorder.subscribe()
    with subscription, pytest.raises(ProgrammingError, match="Already entered"):
        subscription.__enter__()
    with pytest.raises(ProgrammingError, match="Not already entered"):
        recorder.subscribe().__exit__(None, None, None)


def test_a_subscription_starts_after_the_position_given(recorder: Recorder):
    recorder.append([event("A"), event("B"), event("C")])
    with recorder.subscribe(query((["A", "C"], [])), after=1) as subscription:
        assert next(subscription).position == 3


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "at least one event"),
        (
            [event("A"), DCBEvent(type=1, data=b"")],
            r"events\[1\]\.type must be a str, not int",
        ),
        (
            [event("A"), DCBEvent(type="A", data="x")],
            r"events\[1\]\.data must be bytes, not str",
        ),
        (
            [event("A", "x"), DCBEvent(type="A", data=b"", tags=["x", 2])],
            r"events\[1\]\.tags\[1\] must be a str",
        ),
        (
            [event("A"), DCBEvent(type="A", data=b"", tags="x")],
            r"events\[1\]\.tags must be a list of str, not str",
        ),
        (
            [event("A"), object()],
            r"events\[1\] must be a DCBEvent \(with a \.type attribute\), not object",
        ),
        (event("A"), "events must be a list of DCBEvent, not DCBEvent"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_written(
    recorder: Recorder, events: Any, message: str
):
    recorder.append([event("Before")])
    with pytest.raises(ProgrammingError, match=message):
        recorder.append(events)
    assert positions(recorder) == [1]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            DCBAppendCondition(after=2),
            "condition.after is 2, beyond the last recorded position 1",
        ),
        (DCBAppendCondition(after=-1), "condition.after must not be negative, got -1"),
        (
            DCBAppendCondition(query(([], [3]))),
            r"fail_if_events_match\.items\[0\]\.tags\[0\] must be a str, not int",
        ),
        (
            DCBAppendCondition(DCBQuery(items=[["x"]])),
            r"items\[0\] must be a DCBQueryItem",
        ),
        (
            DCBAppendCondition(fail_if_events_match="x"),
            r"condition\.fail_if_events_match must be a DCBQuery .*, not str",
        ),
    ],
)
def test_bad_conditions_are_refused_and_nothing_is_written(
    recorder: Recorder, condition: Any, message: str
):
    recorder.append([event("Before")])
    with pytest.raises(ProgrammingError, match=message):
        recorder.append([event("After")], condition)
    assert positions(recorder) == [1]


def test_bad_read_arguments_are_refused(recorder: Recorder):
    with pytest.raises(ProgrammingError, match="after must not be negative"):
        recorder.read(after=-1)
    with pytest.raises(ProgrammingError, match="limit must not be negative"):
        recorder.read(limit=-5)
    with pytest.raises(ProgrammingError, match=r"query must be a DCBQuery .* not list"):
        recorder.read([DCBQueryItem(tags=["x"])])
    with pytest.raises(
        ProgrammingError, match=r"query\.items\[0\]\.types must be a list of str"
    ):
        recorder.subscribe(DCBQuery(items=[DCBQueryItem(types="A")]))


def test_odd_characters_in_types_and_tags_are_just_text(recorder: Recorder):
    odd = ["", "a b", "ü'\"%_\\", '{x,"y"}', "\\u0000", "%s %b", "x" * 2048]
    if not isinstance(recorder, PostgresDCBRecorder):
        # PostgreSQL text has no NUL, and its indexed keys are limited
        # (test_dcb_postgres.py: refused, before anything is written).
        odd += ["\x00", "y" * 10_000]
    recorder.append([event(t, t) for t in odd])
    for i, text in enumerate(odd, start=1):
        assert positions(recorder, query(([text], [text]))) == [i]


def test_reads_and_conditions_agree_with_eventsourcings_in_memory_recorder(
    recorder: Recorder,
):
    """Random events and queries, read from both: same positions, same heads,
    same verdict on append conditions."""
    from eventsourcing.dcb import api as es_api
    from eventsourcing.dcb.popo import InMemoryDCBRecorder as EsRecorder
    from eventsourcing.persistence import IntegrityError as EsIntegrityError

    rng = random.Random(16)
    types, tags = ["A", "B", "C", "D"], [f"t{i}" for i in range(6)]
    reference = EsRecorder()
    for _ in range(60):
        batch = [
            (rng.choice(types), rng.sample(tags, rng.randint(0, 3)))
            for _ in range(rng.randint(1, 5))
        ]
        recorder.append([DCBEvent(t, b"", list(g)) for t, g in batch])
        reference.append([es_api.DCBEvent(t, b"", list(g)) for t, g in batch])
    head = reference.read().head
    assert head is not None
    for _ in range(300):
        items = [
            (rng.sample(types, rng.randint(0, 2)), rng.sample(tags, rng.randint(0, 2)))
            for _ in range(rng.randint(0, 3))
        ]
        after = rng.choice([None, rng.randint(0, head + 3)])
        limit = rng.choice([None, rng.randint(0, 20)])
        ours = recorder.read(query(*items), after=after, limit=limit)
        theirs = reference.read(
            es_api.DCBQuery([es_api.DCBQueryItem(t, g) for t, g in items]),
            after=after,
            limit=limit,
        )
        assert [e.position for e in ours] == [e.position for e in theirs], items
        assert ours.head == theirs.head
        condition_after = max(0, head - rng.randint(0, 12))
        es_condition = es_api.DCBAppendCondition(
            es_api.DCBQuery([es_api.DCBQueryItem(t, g) for t, g in items]),
            after=condition_after,
        )
        try:
            reference.append([es_api.DCBEvent("Z", b"")], es_condition)
        except EsIntegrityError:
            theirs_refused = True
        else:
            theirs_refused = False
        try:
            recorder.append(
                [DCBEvent("Z", b"")],
                DCBAppendCondition(query(*items), after=condition_after),
            )
        except IntegrityError:
            ours_refused = True
        else:
            ours_refused = False
        assert ours_refused == theirs_refused, (items, condition_after)
        head = reference.read().head
        assert head is not None
    assert [e.position for e in recorder.read()] == list(range(1, head + 1))


def test_an_empty_query_item_matches_every_event_in_a_condition_too(
    recorder: Recorder,
):
    """As in eventsourcing: an item with no types and no tags is no filter."""
    recorder.append([event("A", "x")])
    everything = DCBAppendCondition(DCBQuery(items=[DCBQueryItem()]), after=0)
    with pytest.raises(IntegrityError, match="position 1"):
        recorder.append([event("B")], everything)
    mixed = DCBAppendCondition(query(([], ["nope"]), ([], [])), after=0)
    with pytest.raises(IntegrityError, match="position 1"):
        recorder.append([event("B")], mixed)
    assert recorder.append([event("B")], DCBAppendCondition(DCBQuery([]), after=1)) == 2
    assert positions(recorder) == [1, 2]


def test_a_huge_batch_is_appended_whole_or_not_at_all(recorder: Recorder):
    size = 20_000
    batch = [event("Big", f"t{i % 100}", data=b"x" * 100) for i in range(size)]
    recorder.append([event("Before")])
    # One bad event at the very end: refused, nothing of the batch written.
    with pytest.raises(
        ProgrammingError, match=rf"events\[{size}\]\.data must be bytes"
    ):
        recorder.append([*batch, DCBEvent(type="Big", data="not bytes")])
    assert positions(recorder) == [1]
    # A refused condition: nothing written either.
    with pytest.raises(IntegrityError):
        recorder.append(batch, DCBAppendCondition(after=0))
    assert positions(recorder) == [1]
    # Accepted: all of it, positions in order, found by tag.
    assert recorder.append(batch, DCBAppendCondition(after=1)) == size + 1
    assert positions(recorder, after=1) == list(range(2, size + 2))
    assert positions(recorder, query(([], ["t7"]))) == list(range(9, size + 2, 100))
