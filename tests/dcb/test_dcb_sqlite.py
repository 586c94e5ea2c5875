"""The SQLite DCB recorder: eventsourcing 9.5's reusable DCB test case
(through the drop-in), index use shown by SQLite's query plans, a
reopened file, and processes racing conditional appends on one file while
a subscriber follows (the contract shared with the in-memory recorder is
in test_dcb_recorders.py)."""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
from pathlib import Path

import eventsourcing.dcb.api as es_dcb
from eventsourcing.dcb import tests as es_dcb_tests

from esox.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBQueryItem
from esox.dcb.sqlite import SqliteDCBRecorder
from esox.dropin import dcb as dropin_dcb
from esox.persistence import IntegrityError


class TestDropinSqliteDCBRecorder(es_dcb_tests.DCBRecorderTestCase):
    """eventsourcing's own case, on the recorder behind eventsourcing's interface."""

    def setUp(self) -> None:
        self.directory = tempfile.TemporaryDirectory()
        self.path = str(Path(self.directory.name) / "dcb.db")

    def tearDown(self) -> None:
        self.directory.cleanup()

    def test_append_read(self) -> None:
        self._test_append_read(dropin_dcb.SqliteDCBRecorder(self.path))

    def test_append_subscribe(self) -> None:
        self._test_append_subscribe(dropin_dcb.SqliteDCBRecorder(self.path))

    def test_in_memory_database(self) -> None:
        self._test_append_read(dropin_dcb.SqliteDCBRecorder(":memory:"))

    def test_reads_give_eventsourcing_objects(self) -> None:
        recorder = dropin_dcb.SqliteDCBRecorder(self.path)
        recorder.append([es_dcb.DCBEvent(type="t", data=b"d", tags=["a"])])
        (sequenced,) = recorder.read()
        assert type(sequenced) is es_dcb.DCBSequencedEvent


def query(*items: tuple[list[str], list[str]]) -> DCBQuery:
    return DCBQuery(items=[DCBQueryItem(types=t, tags=g) for t, g in items])


def test_reads_look_positions_up_in_the_indexes_never_scan_a_table():
    recorder = SqliteDCBRecorder(":memory:")
    for q in [
        query(([], ["a"])),
        query((["X"], ["a", "b", "c"])),
        query((["X", "Y"], [])),
        query(([], ["a"]), (["Y"], ["b"]), (["Z"], [])),
    ]:
        plan = recorder.explain_read(q)
        scans = [step for step in plan if step.startswith("SCAN") and step != "SCAN m"]
        assert scans == [], plan
        assert any(
            "USING PRIMARY KEY (tag=?" in s or "dcb_events_type" in s for s in plan
        )


def test_a_reopened_file_keeps_its_events_and_positions(tmp_path: Path):
    path = str(tmp_path / "dcb.db")
    recorder = SqliteDCBRecorder(path, table_prefix="courses")
    recorder.append([DCBEvent("A", b"\x00data", ["t2", "t1", "t2"])])
    recorder.database.close()
    reopened = SqliteDCBRecorder(path, table_prefix="courses")
    assert reopened.append([DCBEvent("B", b"", ["t1"])]) == 2
    (first, second) = reopened.read(query(([], ["t1"])))
    assert first.event == DCBEvent("A", b"\x00data", ["t2", "t1", "t2"])
    assert second.position == 2
    assert list(SqliteDCBRecorder(path).read()) == []  # another prefix: other tables


SEATS = 30


def claim_seats(path: str, client: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Try to claim every seat: read its boundary, decide, append on condition."""
    try:
        recorder = SqliteDCBRecorder(path, create_table=False, lock_timeout=30)
        won = 0
        for seat in range(SEATS):
            boundary = query(([], [f"seat-{seat}"]))
            response = recorder.read(boundary)
            if list(response):
                continue  # already taken
            try:
                recorder.append(
                    [DCBEvent("SeatClaimed", str(client).encode(), [f"seat-{seat}"])],
                    DCBAppendCondition(boundary, after=response.head),
                )
            except IntegrityError:
                continue
            won += 1
        queue.put((client, won))
    except BaseException as error:
        queue.put((client, repr(error)))


def test_processes_racing_for_seats_each_seat_is_won_once_and_a_subscriber_skips_none(
    tmp_path: Path,
):
    path = str(tmp_path / "seats.db")
    recorder = SqliteDCBRecorder(path)
    received: list[int] = []
    subscription = recorder.subscribe(query((["SeatClaimed"], [])))

    def follow() -> None:
        for sequenced in subscription:
            received.append(sequenced.position)
            if len(received) == SEATS:
                return

    follower = threading.Thread(target=follow)
    follower.start()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    clients = [
        context.Process(target=claim_seats, args=(path, c, queue)) for c in range(4)
    ]
    for client in clients:
        client.start()
    results = dict(queue.get(timeout=120) for _ in clients)
    for client in clients:
        client.join(timeout=30)
    assert all(isinstance(won, int) for won in results.values()), results
    assert sum(results.values()) == SEATS
    follower.join(timeout=60)
    subscription.stop()
    assert received == list(range(1, SEATS + 1))
    events = list(recorder.read())
    assert [e.position for e in events] == list(range(1, SEATS + 1))
    assert sorted(e.event.tags[0] for e in events) == sorted(
        f"seat-{s}" for s in range(SEATS)
    )
