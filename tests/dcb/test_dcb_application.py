"""The DCB higher level: domain model, mapper, event store, repository,
application and factory, on memory and on SQLite files (and PostgreSQL when
esox.dcb.postgres is there), with the names and behaviour of eventsourcing 9.5's
``eventsourcing.dcb``."""

from __future__ import annotations

import base64
import importlib.util
import json
import multiprocessing
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

from esox import Aggregate
from esox.dcb.api import DCBQuery, DCBQueryItem
from esox.dcb.application import DCBApplication, DCBRepository
from esox.dcb.domain import (
    Decision,
    EnduringObject,
    InitialDecision,
    Selector,
    Slice,
    Tagged,
)
from esox.dcb.memory import InMemoryDCBFactory, InMemoryDCBRecorder
from esox.dcb.msgpack import MessagePackMapper
from esox.dcb.persistence import (
    DCBEventStore,
    DCBInfrastructureFactory,
    JSONDCBMapper,
    NotFoundError,
)
from esox.dcb.sqlite import SQLiteDCBFactory, SqliteDCBRecorder
from esox.domain import ProgrammingError, event
from esox.memory import MemoryFactory
from esox.persistence import (
    InfrastructureFactory,
    InfrastructureFactoryError,
    IntegrityError,
)
from esox.persistence import ProgrammingError as RecordingError
from esox.utils import get_topic
from tests.dcb.coursebooking import (
    AlreadyJoinedError,
    Course,
    CourseBooking,
    FullyBookedError,
    NotFoundInBookingError,
    Student,
    StudentJoinedCourse,
    TooManyCoursesError,
)
from tests.persistence_envs import persistence_env

HAS_POSTGRES_DCB = importlib.util.find_spec("esox.dcb.postgres") is not None
KINDS = ["memory", "sqlite", "postgres"] if HAS_POSTGRES_DCB else ["memory", "sqlite"]


@pytest.fixture(params=KINDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    with persistence_env(request.param, tmp_path, "booking") as settings:
        yield settings


# Decisions for the JSON mapper: dataclasses, read back without __init__.
@dataclass
class Opened(InitialDecision):
    account_id: str
    originator_topic: str
    owner: str


@dataclass
class Deposited(Decision):
    amount: int


@dataclass
class Transferred(Decision):
    source: str
    target: str
    amount: int


class Account(EnduringObject[Any, str]):
    Opened = Opened

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0

    @event(Deposited)
    def deposit(self, amount: int) -> None:
        self.balance += amount

    @event(Transferred)
    def _(self, source: str, target: str, amount: int) -> None:
        self.balance += amount if self.id == target else -amount


class Ledger(DCBApplication):
    pass


class TransfersOf(Slice[Any]):
    """How much moved out of one account, by transfer."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.sent = 0

    def consistency_boundary(self) -> list[Selector]:
        return [Selector(types=[Transferred], tags=[self.account_id])]

    @event(Transferred)
    def _(self, source: str, amount: int) -> None:
        if source == self.account_id:
            self.sent += amount


class Transfer(Slice[Any]):
    """Moves money if the source's balance allows (a slice that decides)."""

    def __init__(self, source: str, target: str, amount: int) -> None:
        self.source, self.target, self.amount = source, target, amount
        self.balance = 0

    def consistency_boundary(self) -> list[Selector]:
        return [Selector(tags=[self.source])]

    @event(Deposited)
    def _(self, amount: int) -> None:
        self.balance += amount

    @event(Transferred)
    def _(self, source: str, amount: int) -> None:
        self.balance += -amount if source == self.source else amount

    def execute(self) -> None:
        if self.balance < self.amount:
            raise ValueError(f"{self.source} has {self.balance}, not {self.amount}")
        self.trigger_event(
            Transferred,
            tags=[self.source, self.target],
            source=self.source,
            target=self.target,
            amount=self.amount,
        )


def test_course_booking_end_to_end(env: dict[str, str]) -> None:
    with CourseBooking(env) as app:
        ada = app.register_student("Ada", max_courses=2)
        bob = app.register_student("Bob", max_courses=2)
        maths = app.register_course("Maths", places=1)
        art = app.register_course("Art", places=5)
        app.join_course(ada, maths)
        app.join_course(ada, art)
        app.join_course(bob, art)
        with pytest.raises(FullyBookedError):
            app.join_course(bob, maths)
        with pytest.raises(AlreadyJoinedError):
            app.join_course(ada, art)
        music = app.register_course("Music", places=5)
        with pytest.raises(TooManyCoursesError):
            app.join_course(ada, music)
        with pytest.raises(NotFoundInBookingError):
            app.join_course(ada, "course-nope")
        app.rename_student(bob, "Robert")
        assert app.students_of(art) == ["Ada", "Robert"]
        assert app.courses_of(ada) == ["Maths", "Art"]
        assert app.students_of(music) == []
        # Refused decisions recorded nothing: 5 registrations, 3 joins, 1 rename.
        assert len(list(app.recorder.read())) == 9
        joined = DCBQuery([DCBQueryItem(types=[get_topic(StudentJoinedCourse)])])
        assert [e.event.tags for e in app.recorder.read(joined)] == [
            [ada, maths],
            [ada, art],
            [bob, art],
        ]


def test_stale_decision_is_refused_and_nothing_is_recorded(env: dict[str, str]) -> None:
    with CourseBooking(env) as app:
        ada = app.register_student("Ada", max_courses=3)
        bob = app.register_student("Bob", max_courses=3)
        maths = app.register_course("Maths", places=1)
        from tests.dcb.coursebooking import StudentAndCourse

        first = app.repository.get_group(StudentAndCourse, ada, maths)
        second = app.repository.get_group(StudentAndCourse, bob, maths)
        first.join()
        second.join()  # both decided on the same (empty) course
        app.repository.save(first)
        head = app.recorder.read().head
        with pytest.raises(IntegrityError):
            app.repository.save(second)
        assert app.recorder.read().head == head
        assert app.students_of(maths) == ["Ada"]


def test_sqlite_decisions_outlive_the_application(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    with CourseBooking(env) as app:
        ada = app.register_student("Ada", max_courses=1)
        maths = app.register_course("Maths", places=1)
        app.join_course(ada, maths)
    assert isinstance(app.recorder, SqliteDCBRecorder)
    with CourseBooking(env) as reopened:
        assert reopened.students_of(maths) == ["Ada"]
        student = cast(Student, reopened.repository.get(ada))
        assert (student.name, student.course_ids) == ("Ada", [maths])
        assert student.last_known_position == 3


def test_enduring_object_commands_and_projection_methods() -> None:
    account = Account(owner="Ada")
    assert account.id.startswith("account-")
    account.deposit(10)
    account.deposit(amount=5)
    assert account.balance == 15
    tagged = account.collect_events()
    assert [type(t.decision) for t in tagged] == [Opened, Deposited, Deposited]
    assert all(t.tags == [account.id] for t in tagged)
    assert cast(Opened, tagged[0].decision).originator_topic == get_topic(Account)
    assert account.collect_events() == []
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        account.deposit()
    with pytest.raises(ProgrammingError, match="Underscore"):
        account._


def test_json_mapper_repository_and_slices() -> None:
    with Ledger() as app:
        assert isinstance(app.mapper, JSONDCBMapper)
        ada, bob = Account(owner="Ada"), Account(owner="Bob")
        ada.deposit(100)
        app.repository.save(ada)
        app.repository.save(bob)
        app.do(Transfer(ada.id, bob.id, 30))
        with pytest.raises(ValueError, match="has 70, not 80"):
            app.do(Transfer(ada.id, bob.id, 80))
        fetched = app.repository.get_many(ada.id, bob.id, "account-none")
        balances = [cast(Account, a).balance for a in fetched if a is not None]
        assert balances == [70, 30]
        assert fetched[2] is None
        assert app.do(TransfersOf(ada.id)).sent == 30
        assert app.do(TransfersOf(bob.id)).sent == 0
        with pytest.raises(NotFoundError):
            app.repository.get("account-none")
        # A slice that only projects records nothing.
        assert app.recorder.read().head == 4


def test_json_mapper_compresses_and_encrypts() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    plain = JSONDCBMapper()
    event = plain.to_dcb_event(Tagged(["t"], Deposited(amount=7)))
    assert event.type == get_topic(Deposited)
    assert json.loads(event.data) == {"amount": 7}
    env = {"COMPRESSOR_TOPIC": "zlib", "CIPHER_KEY": key}
    with Ledger(env) as app:
        mapper = app.mapper
        assert isinstance(mapper, JSONDCBMapper)
        recorded = mapper.to_dcb_events([Tagged(["t"], Deposited(amount=7))])[0]
        assert b"amount" not in recorded.data
        with pytest.raises(zlib.error):
            zlib.decompress(recorded.data)
        back = mapper.to_domain_event(recorded)
        assert (back.tags, back.decision) == (["t"], Deposited(amount=7))


def test_json_mapper_refuses_what_it_cannot_record() -> None:
    from tests.dcb.coursebooking import StudentJoinedCourse as Struct

    mapper = JSONDCBMapper()
    with pytest.raises(RecordingError, match="none of its fields"):
        mapper.to_dcb_events([Tagged(["t"], Struct(student_id="s", course_id="c"))])

    @dataclass
    class HasOrigin(Decision):
        originator_id: str

    with pytest.raises(RecordingError, match="reserves them"):
        mapper.to_dcb_events([Tagged(["t"], HasOrigin("x"))])


def test_event_store_append_and_read() -> None:
    store = DCBEventStore(JSONDCBMapper(), InMemoryDCBRecorder())
    assert store.append([]) == 0
    first = Tagged(["a"], Deposited(amount=1))
    assert store.append([first]) == 1
    assert store.append([Tagged(["a", "b"], Deposited(amount=2))], cb=[], after=1) == 2
    with pytest.raises(IntegrityError):
        store.append([Tagged(["a"], Deposited(amount=3))], Selector(tags=["a"]), 1)
    response = store.read(Selector(tags=["b"]))
    assert [t.decision for t in response] == [Deposited(amount=2)]
    assert response.head == 2
    assert [t.decision for t in store.read(after=1)] == [Deposited(amount=2)]
    by_type = store.read([Selector(types=[Transferred]), Selector(tags=["b"])])
    assert len(list(by_type)) == 1


def test_repository_get_of_an_unknown_id_raises_not_found() -> None:
    repository = DCBRepository[Any](
        DCBEventStore(MessagePackMapper(), InMemoryDCBRecorder())
    )
    with pytest.raises(NotFoundError, match="not-an-object"):
        repository.get("not-an-object")
    assert repository.get_many() == []


def test_enduring_object_errors() -> None:
    class NoInitial(EnduringObject[Any, str]):
        pass

    with pytest.raises(ProgrammingError, match="Please define"):
        NoInitial()

    class Mismatched(EnduringObject[Any, str]):
        def __init__(self, a: str) -> None:
            self.a = a

        @dataclass
        class Created(InitialDecision):
            mismatched_id: str
            originator_topic: str

    with pytest.raises(TypeError, match="Unable to construct"):
        Mismatched(a="a")
    with pytest.raises(TypeError, match="originator_topic"):
        Account(owner="x", originator_topic="y")


def test_positional_arguments_create_an_enduring_object() -> None:
    assert Account("Ada").owner == "Ada"
    student = Student("Ada", 3)
    assert (student.name, student.max_courses) == ("Ada", 3)


def test_decision_class_on_an_aggregate_is_refused() -> None:
    with pytest.raises(TypeError, match="is a decision"):

        class Wrong(Aggregate):
            @event(Deposited)
            def deposit(self, amount: int) -> None:
                pass


@pytest.mark.parametrize(
    ("module", "factory"),
    [
        ("", InMemoryDCBFactory),
        ("esox.memory", InMemoryDCBFactory),
        ("esox.popo", InMemoryDCBFactory),
        ("esox.dcb.popo", InMemoryDCBFactory),
        ("eventsourcing.dcb.popo", InMemoryDCBFactory),
        ("esox.sqlite", SQLiteDCBFactory),
        ("esox.dcb.sqlite", SQLiteDCBFactory),
        ("esox.dcb.sqlite:SQLiteDCBFactory", SQLiteDCBFactory),
    ],
)
def test_factory_is_selected_by_persistence_module(
    module: str, factory: type[Any], tmp_path: Path
) -> None:
    env = {"PERSISTENCE_MODULE": module, "SQLITE_DBNAME": str(tmp_path / "f.db")}
    with DCBInfrastructureFactory.construct(env) as constructed:
        assert type(constructed) is factory
        recorder = constructed.dcb_recorder()
        expected = (
            SqliteDCBRecorder if factory is SQLiteDCBFactory else InMemoryDCBRecorder
        )
        assert isinstance(recorder, expected)


def test_sqlite_tables_are_named_after_the_application(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": str(tmp_path / "n.db")}
    with Ledger(env) as app:
        app.repository.save(Account(owner="Ada"))
    other = SqliteDCBRecorder(str(tmp_path / "n.db"), table_prefix="ledger")
    assert len(list(other.read())) == 1
    other.database.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PERSISTENCE_MODULE": "esox.nowhere"}, "Failed to resolve"),
        ({"PERSISTENCE_MODULE": "esox.domain"}, "Found 0 DCB infrastructure"),
        ({"PERSISTENCE_MODULE": "esox.sqlite"}, "SQLite database name"),
    ],
)
def test_bad_persistence_module_is_a_clear_error(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(InfrastructureFactoryError, match=message):
        DCBApplication(settings)


def test_a_persistence_module_may_import_factories_besides_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class MyFactory(MemoryFactory):
        pass

    class MyDCBFactory(InMemoryDCBFactory):
        pass

    modules: dict[str, list[type[Any]]] = {
        "mine": [MemoryFactory, MyFactory],
        "mydcb": [InMemoryDCBFactory, MyDCBFactory],
        "reexports": [InMemoryDCBFactory],
        "two": [MemoryFactory, InMemoryDCBFactory],
    }
    for name, members in modules.items():
        module = ModuleType(name)
        for member in members:
            setattr(module, member.__name__, member)
        monkeypatch.setitem(sys.modules, name, module)
    MyFactory.__module__, MyDCBFactory.__module__ = "mine", "mydcb"

    def construct(base: type[Any], module: str) -> type[Any]:
        with base.construct({"PERSISTENCE_MODULE": module}) as factory:
            return type(factory)

    assert construct(InfrastructureFactory, "mine") is MyFactory
    assert construct(DCBInfrastructureFactory, "mydcb") is MyDCBFactory
    assert construct(DCBInfrastructureFactory, "reexports") is InMemoryDCBFactory
    assert construct(DCBInfrastructureFactory, "two") is InMemoryDCBFactory
    with pytest.raises(InfrastructureFactoryError, match="Found 2 infrastructure"):
        construct(InfrastructureFactory, "two")
    with pytest.raises(InfrastructureFactoryError, match="Found 0 DCB"):
        construct(DCBInfrastructureFactory, "mine")


def test_mapper_topic_must_name_a_dcb_mapper() -> None:
    with pytest.raises(ValueError, match="MAPPER_TOPIC"):
        DCBApplication({"MAPPER_TOPIC": "esox.persistence:Mapper"})
    app = DCBApplication({"MAPPER_TOPIC": get_topic(MessagePackMapper)})
    assert isinstance(app.mapper, MessagePackMapper)


def test_application_name_and_env() -> None:
    class Named(DCBApplication):
        name = "Other"

    class Unnamed(DCBApplication):
        pass

    assert Named().name == "Other"
    assert Unnamed().name == "Unnamed"
    with DCBApplication({"NAME": "value"}) as app:
        assert app.env["NAME"] == "value"


def test_course_and_student_are_read_together_at_one_position() -> None:
    with CourseBooking() as app:
        ada = app.register_student("Ada", max_courses=1)
        maths = app.register_course("Maths", places=1)
        student, course = app.repository.get_many(ada, maths)
        assert isinstance(student, Student)
        assert isinstance(course, Course)
        assert student.last_known_position == course.last_known_position == 2


def join_until_decided(path: str, course_id: str, student_ids: list[str]) -> list[str]:
    """A client process: join each student, deciding again after a refusal."""
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": path}
    outcomes = []
    with CourseBooking(env) as app:
        for student_id in student_ids:
            while True:
                try:
                    app.join_course(student_id, course_id)
                except IntegrityError:
                    continue  # someone decided on this course first: again
                except FullyBookedError:
                    outcomes.append("full")
                else:
                    outcomes.append("joined")
                break
    return outcomes


def test_client_processes_never_overbook_a_course(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": path}
    with CourseBooking(env) as app:
        course_id = app.register_course("Maths", places=6)
        students = [app.register_student(f"s{i}", max_courses=1) for i in range(20)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(
            join_until_decided,
            [(path, course_id, students[i::4]) for i in range(4)],
        )
    outcomes = [o for client in results for o in client]
    assert sorted(outcomes) == ["full"] * 14 + ["joined"] * 6
    with CourseBooking(env) as app:
        joined = app.students_of(course_id)
        assert len(joined) == len(set(joined)) == 6
        positions = [e.position for e in app.recorder.read()]
        assert positions == list(range(1, 21 + 6 + 1))


def scenario(model: Any, env: dict[str, str]) -> list[object]:
    """Course booking decisions and what each one gave, on either library."""
    results: list[object] = []
    with model.CourseBooking(env) as app:
        ada = app.register_student("Ada", max_courses=2)
        bob = app.register_student("Bob", max_courses=1)
        maths = app.register_course("Maths", places=1)
        art = app.register_course("Art", places=3)
        for student, course in [(ada, maths), (bob, maths), (bob, art), (ada, art)]:
            try:
                app.join_course(student, course)
            except model.CourseBookingError as error:
                results.append(type(error).__name__)
            else:
                results.append("joined")
        app.rename_student(bob, "Robert")
        results += [app.students_of(art), app.courses_of(ada), app.courses_of(bob)]
        results.append([e.event.tags for e in app.recorder.read()][4:])
        results.append(app.recorder.read().head)
    # The tags hold random ids: compare their kinds.
    return [
        [[t.split("-")[0] for t in tags] for tags in r]
        if isinstance(r, list) and r and isinstance(r[0], list)
        else r
        for r in results
    ]


def test_the_same_model_decides_the_same_on_eventsourcing_and_with_json() -> None:
    from tests.dcb import coursebooking as dcb_coursebooking

    eventsourcing = dcb_coursebooking.for_eventsourcing()
    expected = [
        "joined",
        "FullyBookedError",
        "joined",
        "joined",
        ["Robert", "Ada"],
        ["Maths", "Art"],
        ["Art"],
        [["student", "course"]] * 3 + [["student"]],
        8,
    ]
    assert scenario(dcb_coursebooking, {}) == expected
    assert scenario(dcb_coursebooking.with_json_decisions(), {}) == expected
    assert scenario(
        eventsourcing, {"PERSISTENCE_MODULE": "eventsourcing.dcb.popo"}
    ) == (expected)
