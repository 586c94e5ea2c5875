"""The PostgreSQL DCB recorder: eventsourcing 9.5's reusable DCB test case
(through the drop-in), one database written and read by eventsourcing's
``postgres_tt`` recorder and by esox's both ways, reads that use indexes
(EXPLAIN), and a subscriber that a lost NOTIFY does not hang (the contract
shared with the other recorders is in test_dcb_recorders.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from eventsourcing.dcb import api as es_dcb
from eventsourcing.dcb import tests as es_dcb_tests
from eventsourcing.dcb.postgres_tt import PostgresDCBRecorderTT
from eventsourcing.persistence import IntegrityError as EsIntegrityError
from eventsourcing.postgres import PostgresDatastore as EsPostgresDatastore

from esox.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBQueryItem
from esox.dcb.postgres import PostgresDCBRecorder
from esox.dropin import dcb as dropin_dcb
from esox.persistence import IntegrityError, ProgrammingError
from esox.postgres import PostgresDatastore
from tests.persistence_envs import POSTGRES, postgres_schema

CONNECT = [
    POSTGRES[f"POSTGRES_{key}"]
    for key in ("DBNAME", "HOST", "PORT", "USER", "PASSWORD")
]


def datastore(schema: str) -> PostgresDatastore:
    return PostgresDatastore(*CONNECT, schema=schema)


def es_datastore(schema: str) -> EsPostgresDatastore:
    # A subscription holds one connection to LISTEN.
    return EsPostgresDatastore(*CONNECT, schema=schema, pool_size=4)


@pytest.fixture
def schema() -> Iterator[str]:
    with postgres_schema() as name:
        yield name


@pytest.fixture
def recorder(schema: str) -> Iterator[PostgresDCBRecorder]:
    store = datastore(schema)
    recorder = PostgresDCBRecorder(store)
    recorder.create_table()
    yield recorder
    store.close()


def query(*items: tuple[list[str], list[str]]) -> DCBQuery:
    return DCBQuery(items=[DCBQueryItem(types=t, tags=g) for t, g in items])


class TestDropinPostgresDCBRecorder(es_dcb_tests.DCBRecorderTestCase):
    """eventsourcing's own case, on the recorder behind eventsourcing's interface."""

    def setUp(self) -> None:
        self.schema = postgres_schema()
        self.datastore = datastore(self.schema.__enter__())
        self.recorder = dropin_dcb.PostgresDCBRecorder(self.datastore)
        self.recorder.create_table()

    def tearDown(self) -> None:
        self.datastore.close()
        self.schema.__exit__(None, None, None)

    def test_append_read(self) -> None:
        self._test_append_read(self.recorder)

    def test_append_subscribe(self) -> None:
        self._test_append_subscribe(self.recorder)

    def test_a_failed_condition_is_eventsourcings_integrity_error(self) -> None:
        self.recorder.append([es_dcb.DCBEvent(type="t", data=b"d", tags=["a"])])
        (sequenced,) = self.recorder.read()
        assert type(sequenced) is es_dcb.DCBSequencedEvent
        with pytest.raises(EsIntegrityError):
            self.recorder.append(
                [es_dcb.DCBEvent(type="t", data=b"d")], es_dcb.DCBAppendCondition()
            )


def test_eventsourcing_reads_and_appends_to_what_esox_wrote(schema: str):
    store = datastore(schema)
    ours = PostgresDCBRecorder(store, events_table_name="courses")
    ours.create_table()
    ours.append([DCBEvent("Registered", b"\x00s1", ["student-1"])])
    ours.append([DCBEvent("Opened", b"c1", ["course-1"])])
    es_store = es_datastore(schema)
    theirs = PostgresDCBRecorderTT(es_store, events_table_name="courses")
    boundary = es_dcb.DCBQuery(
        [es_dcb.DCBQueryItem(types=[], tags=["student-1", "course-1"])]
    )
    response = theirs.read(es_dcb.DCBQuery([es_dcb.DCBQueryItem(tags=["student-1"])]))
    assert [(e.position, e.event.data) for e in response] == [(1, b"\x00s1")]
    assert response.head == 2
    # eventsourcing's conditional append (its SQL function, created by esox).
    joined = es_dcb.DCBEvent("Joined", b"j", ["student-1", "course-1"])
    assert theirs.append([joined], es_dcb.DCBAppendCondition(boundary, after=2)) == 3
    with pytest.raises(EsIntegrityError):
        theirs.append([joined], es_dcb.DCBAppendCondition(boundary, after=2))
    assert theirs.append([es_dcb.DCBEvent("Left", b"", ["student-1"])]) == 4
    # esox reads eventsourcing's events and conditions agree.
    assert [
        (e.position, e.event.type) for e in ours.read(query(([], ["course-1"])))
    ] == [
        (2, "Opened"),
        (3, "Joined"),
    ]
    with pytest.raises(IntegrityError, match="position 3"):
        ours.append(
            [DCBEvent("Joined", b"", ["student-1", "course-1"])],
            DCBAppendCondition(query(([], ["student-1", "course-1"])), after=2),
        )
    es_store.close()
    store.close()


def test_esox_reads_and_appends_to_what_eventsourcing_wrote(
    schema: str, monkeypatch: pytest.MonkeyPatch
):
    # eventsourcing's CREATE TABLE names the events table without its schema
    # (REFERENCES), so it needs the schema on the search path.
    monkeypatch.setenv("PGOPTIONS", f"-c search_path={schema}")
    es_store = es_datastore(schema)
    theirs = PostgresDCBRecorderTT(es_store)
    theirs.create_table()
    theirs.append(
        [
            es_dcb.DCBEvent("A", b"1", ["x", "y"]),
            es_dcb.DCBEvent("B", b"2", ["y"]),
        ]
    )
    store = datastore(schema)
    ours = PostgresDCBRecorder(store)
    ours.create_table()  # adds esox's type index; keeps eventsourcing's tables
    response = ours.read(query(([], ["y"])))
    assert [(e.position, e.event) for e in response] == [
        (1, DCBEvent("A", b"1", ["x", "y"])),
        (2, DCBEvent("B", b"2", ["y"])),
    ]
    assert ours.read(query((["B"], []))).head == 2
    assert ours.append([DCBEvent("C", b"3", ["x"])], DCBAppendCondition(after=2)) == 3
    # eventsourcing sees esox's event, by tag and by type.
    got = theirs.read(es_dcb.DCBQuery([es_dcb.DCBQueryItem(types=["A"], tags=["x"])]))
    assert [e.position for e in got] == [1]
    got = theirs.read(es_dcb.DCBQuery([es_dcb.DCBQueryItem(tags=["x"])]), after=1)
    assert [(e.position, e.event.data, e.event.tags) for e in got] == [(3, b"3", ["x"])]
    # A subscription of eventsourcing's is woken by esox's NOTIFY.
    with theirs.subscribe(after=3) as subscription:
        ours.append([DCBEvent("D", b"4", [])])
        assert next(subscription).position == 4
    es_store.close()
    store.close()


def test_reads_use_the_tag_and_type_indexes_never_a_scan(recorder: PostgresDCBRecorder):
    # Enough rows, and fresh statistics, for the planner to prefer indexes.
    for batch in range(20):
        recorder.append(
            [
                DCBEvent(f"T{i % 5}", b"", [f"s{batch}-{i}", f"c{i % 40}"])
                for i in range(500)
            ]
        )
    with recorder.datastore.connection() as conn:
        conn.execute(f'ANALYZE "{recorder.schema}"."dcb_events_tt_main"')
        conn.execute(f'ANALYZE "{recorder.schema}"."dcb_events_tt_tag"')
    for q in [
        query(([], ["c3"])),
        query((["T3"], ["c3", "s4-3"])),
        query(([], ["s1-1"]), (["T2"], ["c2"])),
        query((["T1"], [])),
    ]:
        plan = "\n".join(recorder.explain_read(q))
        assert "Seq Scan" not in plan, plan
        assert "idx_tag_main_id" in plan or "idx_type_id" in plan, plan


def test_a_subscriber_is_not_hung_by_a_lost_notify(recorder: PostgresDCBRecorder):
    subscription = recorder.subscribe(query(([], ["x"])))
    first = ThreadPoolExecutor(1).submit(next, subscription)
    time.sleep(0.2)  # let it block
    # A row inserted without NOTIFY, as if the notification were lost.
    with recorder.datastore.connection() as conn, conn.transaction():
        events = f'"{recorder.schema}"."dcb_events_tt_main"'
        tags = f'"{recorder.schema}"."dcb_events_tt_tag"'
        conn.execute(
            f"INSERT INTO {events} (type, data, tags) VALUES ('A', '', '{{x}}')"
        )
        conn.execute(f"INSERT INTO {tags} (tag, main_id) VALUES ('x', 1)")
    assert first.result(timeout=5).position == 1  # the timed poll found it
    subscription.stop()


def test_types_and_tags_postgresql_cannot_store_are_refused_before_writing(
    recorder: PostgresDCBRecorder,
):
    recorder.append([DCBEvent("Before", b"")])
    with pytest.raises(ProgrammingError, match=r"events\[1\]\.type contains a NUL"):
        recorder.append([DCBEvent("A", b""), DCBEvent("\x00", b"")])
    with pytest.raises(ProgrammingError, match=r"events\[0\]\.tags\[1\] is 3000 bytes"):
        recorder.append([DCBEvent("A", b"", ["ok", "é" * 1500])])
    with pytest.raises(
        ProgrammingError, match=r"query\.items\[0\]\.tags\[0\] contains"
    ):
        recorder.read(query(([], ["\x00"])))
    # Nothing written, and no position was used up.
    assert recorder.append([DCBEvent("After", b"", ["x" * 2048])]) == 2
    assert [e.position for e in recorder.read()] == [1, 2]


def test_a_missing_table_is_a_clear_error(schema: str):
    store = datastore(schema)
    recorder = PostgresDCBRecorder(store)
    with pytest.raises(ProgrammingError, match="dcb_events_tt_main"):
        recorder.read()
    with pytest.raises(ProgrammingError, match="dcb_events_tt_main"):
        recorder.append([DCBEvent("A", b"")])
    # The pooled connections that failed (one in a pipeline) are usable again.
    recorder.create_table()
    for _ in range(store.pool.max_size + 1):
        assert recorder.append([DCBEvent("A", b"")]) == recorder.read().head
    store.close()


def test_odd_table_names_are_quoted_everywhere(schema: str):
    store = datastore(schema)
    recorder = PostgresDCBRecorder(store, events_table_name='Odd %s "name"')
    recorder.create_table()
    recorder.append([DCBEvent("A", b"", ["x"])])
    assert (
        recorder.append([DCBEvent("B", b"", ["x"])], DCBAppendCondition(after=1)) == 2
    )
    with recorder.subscribe(query(([], ["x"]))) as subscription:
        assert [next(subscription).position, next(subscription).position] == [1, 2]
    assert "Index" in "\n".join(recorder.explain_read(query((["B"], ["x"]))))
    store.close()


def test_appends_prepare_again_what_the_server_deallocated(
    recorder: PostgresDCBRecorder,
):
    boundary = query((["A"], ["x"]))
    store = recorder.datastore

    def append() -> int:
        condition = DCBAppendCondition(boundary, after=recorder.read(boundary).head)
        return recorder.append([DCBEvent("A", b"", ["x"])], condition)

    assert [append(), append()] == [1, 2]
    for position in (3, 4):
        with store.connection() as conn:
            backend = conn.info.backend_pid
            conn.execute("DEALLOCATE ALL")
        assert append() == position
        # Prepared again on the same connection (not on one opened afresh).
        with store.connection() as conn:
            assert conn.info.backend_pid == backend
    with pytest.raises(IntegrityError):
        recorder.append(
            [DCBEvent("A", b"", ["x"])], DCBAppendCondition(boundary, after=1)
        )
    assert [e.position for e in recorder.read(boundary)] == [1, 2, 3, 4]
