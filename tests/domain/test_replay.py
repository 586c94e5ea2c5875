"""Replay in Rust (esox._core.replay) gives what project_aggregate gives in Python.

Every test replays the same stored stream both ways, from an in-memory, an
SQLite file and a pure-Python recorder, and compares the outcomes: the
aggregates with ==, or the errors by type and arguments.
"""

from __future__ import annotations

import copy
import json
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import UUID, uuid4

import pytest

from esox import _core
from esox.application.repository import project_aggregate as python_project
from esox.domain import (
    Aggregate,
    AggregateCreated,
    CanMutateAggregate,
    OriginatorIDError,
    OriginatorVersionError,
    event,
)
from esox.domain.aggregate import DecoratedFuncCaller
from esox.persistence import (
    AggregateRecorder,
    EventStore,
    JSONTranscoder,
    Mapper,
    StoredEvent,
)
from esox.persistence.replay import project_aggregate, replay_aggregate
from tests.domain.models import (
    Account,
    Book,
    Cat,
    Counter,
    Dog,
    Note,
    Page,
    Person,
    Robot,
    Strange,
)

# Recorders: Rust ones (and Python subclasses of them) and one in pure Python.


class ListRecorder(AggregateRecorder):
    """A recorder written in Python, as the PostgreSQL one is."""

    def __init__(self) -> None:
        self.stored: list[StoredEvent] = []

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self.stored.extend(stored_events)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        selected = sorted(
            (
                s
                for s in self.stored
                if s.originator_id == originator_id
                and (gt is None or s.originator_version > gt)
                and (lte is None or s.originator_version <= lte)
            ),
            key=lambda s: s.originator_version,
            reverse=desc,
        )
        return selected if limit is None else selected[:limit]


class MemorySubclassRecorder(_core.MemoryRecorder):
    """A Python subclass of the Rust recorder."""


StoreMaker = Callable[..., EventStore[Any]]


@pytest.fixture(params=["memory", "sqlite", "python"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    """Makes event stores (optionally for snapshots, or for str ids)."""
    opened: list[Any] = []

    def make(*, snapshots: bool = False, str_ids: bool = False) -> EventStore[Any]:
        recorder: Any
        if request.param == "memory":
            recorder = MemorySubclassRecorder()
        elif request.param == "sqlite":
            recorder = _core.SqliteRecorder(
                str(tmp_path / "events.db"),
                "stored_snapshots" if snapshots else "stored_events",
                notifications=not snapshots,
                originator_id_type="text" if str_ids else "uuid",
            )
            opened.append(recorder)
        else:
            recorder = ListRecorder()
        return EventStore(Mapper(JSONTranscoder()), recorder)

    yield make
    for recorder in opened:
        recorder.close()


# Running both ways and comparing.


def outcome(run: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        result = run()
    except Exception as e:
        return ("error", type(e), e.args)
    return ("ok", result)


def assert_same(rust: tuple[Any, ...], python: tuple[Any, ...]) -> None:
    assert rust == python
    if rust[0] == "ok" and rust[1] is not None:
        assert type(rust[1]) is type(python[1])
        assert rust[1].__dict__ == python[1].__dict__
        assert list(rust[1].__dict__) == list(python[1].__dict__)


def replayed_both_ways(
    store: EventStore[Any],
    originator_id: Any,
    *,
    initial: Any = None,
    gt: int | None = None,
    lte: int | None = None,
) -> tuple[Any, ...]:
    """Replay in Rust and in Python (each from its own copy of ``initial``)."""
    rust = outcome(
        lambda: replay_aggregate(
            store, originator_id, initial=copy.deepcopy(initial), gt=gt, lte=lte
        )
    )
    python = outcome(
        lambda: python_project(
            copy.deepcopy(initial), store.get(originator_id, gt=gt, lte=lte)
        )
    )
    assert_same(rust, python)
    return rust


def saved(store: EventStore[Any], *aggregates: Any) -> None:
    for agg in aggregates:
        store.put(agg.collect_events())


def projected_both_ways(make_events: Callable[[], list[Any]]) -> tuple[Any, ...]:
    """``project_aggregate`` in Rust and in Python, each on fresh events."""
    rust = outcome(lambda: project_aggregate(None, make_events()))
    python = outcome(lambda: python_project(None, make_events()))
    assert_same(rust, python)
    return rust


# The tests.


def test_dog_stream_replays_to_an_equal_aggregate(new_store: StoreMaker) -> None:
    store = new_store()
    dog = Dog("Fido")
    for i in range(50):
        dog.add_trick(f"trick {i}")
    dog.rename("Rex")
    saved(store, dog, Dog("Other"))
    status, replayed = replayed_both_ways(store, dog.id)
    assert status == "ok"
    assert replayed == dog
    assert replayed.version == 52
    assert replayed.modified_on == dog.modified_on
    assert replayed.created_on == dog.created_on
    assert replayed.pending_events == []


@pytest.mark.parametrize(("gt", "lte"), [(None, 1), (None, 7), (3, None), (3, 6)])
def test_version_ranges(new_store: StoreMaker, gt: int | None, lte: int | None) -> None:
    store = new_store()
    dog = Dog("Fido")
    for i in range(9):
        dog.add_trick(f"trick {i}")
    saved(store, dog)
    initial = None
    if gt is not None:
        initial = python_project(None, store.get(dog.id, lte=gt))
    status, replayed = replayed_both_ways(
        store, dog.id, initial=initial, gt=gt, lte=lte
    )
    assert status == "ok"
    assert replayed.version == (lte or 10)


def test_explicit_event_classes_with_apply(new_store: StoreMaker) -> None:
    store = new_store()
    account = Account("alice")
    account.credit(Decimal("10.50"))
    account.debit(Decimal("0.25"))
    account.credit(Decimal(3))
    saved(store, account)
    _, replayed = replayed_both_ways(store, account.id)
    assert replayed == account
    assert replayed.history == [Decimal("10.50"), Decimal(3)]
    assert replayed.balance == Decimal("13.25")


def test_created_event_with_apply_and_trigger_event(new_store: StoreMaker) -> None:
    store = new_store()
    counter = Counter._create(Counter.Started, start=5)
    counter.increment(2)
    counter.increment(3)
    saved(store, counter)
    assert replayed_both_ways(store, counter.id) == ("ok", counter)


def test_events_with_their_own_mutate(new_store: StoreMaker) -> None:
    store = new_store()
    counter = Counter._create(Counter.Started, start=1)
    counter.increment(1)
    counter.trigger_event(Counter.Noted, text="hello")
    counter.increment(1)
    saved(store, counter)
    assert replayed_both_ways(store, counter.id) == ("ok", counter)


def test_an_event_that_discards_the_aggregate(new_store: StoreMaker) -> None:
    store = new_store()
    counter = Counter._create(Counter.Started, start=1)
    counter.trigger_event(Counter.Discarded)
    saved(store, counter)
    assert replayed_both_ways(store, counter.id) == ("ok", None)


def test_property_setter_dataclass_and_class_decorator(new_store: StoreMaker) -> None:
    store = new_store()
    person = Person("Ann")
    person.name = "Bea"
    book = Book(title="Dune", tags=[])
    saved(store, book)  # before the list the event shares with book grows
    book.tag("scifi")
    book.tag("classic", weight=3)
    note = Note("a")
    note.edit("b")
    saved(store, person, book, note)
    assert replayed_both_ways(store, person.id) == ("ok", person)
    assert replayed_both_ways(store, book.id) == ("ok", book)
    assert replayed_both_ways(store, note.id) == ("ok", note)


def test_str_ids_and_init_that_receives_the_id(new_store: StoreMaker) -> None:
    store = new_store(str_ids=True)
    page = Page(id="home", title="Welcome")
    page.retitle("Hello")
    saved(store, page)
    _, replayed = replayed_both_ways(store, "home")
    assert replayed == page
    assert replayed.id == "home" and replayed.slug == "home"


def test_upcast_events(new_store: StoreMaker) -> None:
    store = new_store()
    cat = Cat("Tom")
    cat.feed("fish")
    cat.feed("tuna")
    events = cat.collect_events()
    stored = store.mapper.to_stored_events(events)
    # The second Fed event as class version 1 stored it: no food, no version.
    old_state = json.loads(stored[2].state)
    del old_state["food"], old_state["class_version"]
    stored[2] = StoredEvent(
        cat.id,
        3,
        stored[2].topic,
        json.dumps(old_state, separators=(",", ":")).encode(),
    )
    store.recorder.insert_events(stored)
    _, replayed = replayed_both_ways(store, cat.id)
    assert replayed.meals == ["fish", "kibble"]


def test_snapshot_then_later_events(new_store: StoreMaker) -> None:
    store, snapshots = new_store(), new_store(snapshots=True)
    dog = Dog("Fido")
    for i in range(5):
        dog.add_trick(f"trick {i}")
    snapshots.put([Dog.Snapshot.take(dog)])
    for i in range(5, 8):
        dog.add_trick(f"trick {i}")
    dog.rename("Rex")
    saved(store, dog)

    def snapshot() -> Any:
        # Fresh each time: a snapshot's state is shallow-copied into the
        # aggregate, so replaying from one object twice would share its lists.
        return snapshots.get(dog.id, desc=True, limit=1)[0]

    _, replayed = replayed_both_ways(
        store, dog.id, initial=snapshot().mutate(None), gt=6
    )
    assert replayed == dog
    # Or given the snapshot itself: it is mutated, and replay goes on after it.
    assert replay_aggregate(store, dog.id, initial=snapshot()) == dog
    assert replay_aggregate(store, dog.id, initial=snapshot(), lte=7).version == 7
    # A snapshot among the events is mutated by its own mutate.
    later = store.get(dog.id, gt=6)
    assert project_aggregate(None, [snapshot(), *later]) == dog
    # Replaying from a snapshot with no later events gives the snapshot's state.
    _, replayed = replayed_both_ways(
        store, dog.id, initial=snapshot().mutate(None), gt=99
    )
    assert replayed == snapshot().mutate(None)


def test_not_found_is_none_and_initial_comes_back_unchanged(
    new_store: StoreMaker,
) -> None:
    store = new_store()
    assert replayed_both_ways(store, uuid4()) == ("ok", None)
    dog = Dog("Fido")
    saved(store, dog)
    initial = python_project(None, store.get(dog.id))
    assert replay_aggregate(store, dog.id, initial=initial, gt=1) is initial
    assert replay_aggregate(store, dog.id, lte=0) is None


def test_error_raised_by_apply_mid_stream(new_store: StoreMaker) -> None:
    store = new_store()
    dog = Dog("Fido")
    dog.add_trick("sit")
    refused = Dog.TrickRefused(  # type: ignore[attr-defined]
        originator_id=dog.id,
        originator_version=3,
        timestamp=Dog.Event.create_timestamp(),
        trick="sit",
    )
    saved(store, dog)
    store.put([refused])
    status, error, args = replayed_both_ways(store, dog.id)
    assert (status, error, args) == ("error", ValueError, ("Fido already knows sit",))


def test_version_gap_raises_originator_version_error(new_store: StoreMaker) -> None:
    store = new_store()
    dog = Dog("Fido")
    for i in range(4):
        dog.add_trick(f"trick {i}")
    events = dog.collect_events()
    store.put([*events[:2], *events[3:]])
    status, error, args = replayed_both_ways(store, dog.id)
    assert (status, error) == ("error", OriginatorVersionError)
    assert args == ("event originator_version 4 is not the aggregate's next version 3",)


def test_events_of_another_aggregate_raise_originator_id_error() -> None:
    fido, rex = Dog("Fido"), Dog("Rex")
    fido.add_trick("sit")
    rex.add_trick("roll")
    mapper = Mapper(JSONTranscoder())
    stored = mapper.to_stored_events(
        [*fido.collect_events()[:1], rex.pending_events[1]]
    )
    status, error, args = projected_both_ways(lambda: mapper.to_domain_events(stored))
    assert (status, error) == ("error", OriginatorIDError)
    assert args == (
        f"event originator_id {rex.id!r} does not match aggregate id {fido.id!r}",
    )


def test_first_event_not_a_created_event() -> None:
    dog = Dog("Fido")
    dog.add_trick("sit")
    events = dog.collect_events()
    mapper = Mapper(JSONTranscoder())
    stored = mapper.to_stored_events(events[1:])
    status, error, _ = projected_both_ways(lambda: mapper.to_domain_events(stored))
    assert status == "error" and error in (AssertionError, AttributeError)


def test_missing_event_attribute_raises_like_python() -> None:
    dog = Dog("Fido")
    dog.add_trick("sit")
    mapper = Mapper(JSONTranscoder())
    stored = mapper.to_stored_events(dog.collect_events())
    state = json.loads(stored[1].state)
    del state["trick"]
    stored[1] = StoredEvent(
        dog.id, 2, stored[1].topic, json.dumps(state, separators=(",", ":")).encode()
    )
    status, error, args = projected_both_ways(lambda: mapper.to_domain_events(stored))
    assert (status, error, args) == ("error", KeyError, ("trick",))


def test_aggregates_with_their_own_setattr(new_store: StoreMaker) -> None:
    store = new_store()
    robot = Robot("R2")
    robot.move("left")
    robot.move("right")
    saved(store, robot)
    _, replayed = replayed_both_ways(store, robot.id)
    assert replayed.moves == ["left", "right"]


def test_instance_attribute_shadowing_apply(new_store: StoreMaker) -> None:
    store = new_store()
    strange = Strange()
    shadowed = Strange.Shadowed(
        originator_id=strange.id,
        originator_version=2,
        timestamp=Strange.Event.create_timestamp(),
        apply=1,
    )
    saved(store, strange)
    store.put([shadowed])
    status, error, _ = replayed_both_ways(store, strange.id)
    assert (status, error) == ("error", TypeError)


def test_customised_event_store_chooses_the_events(new_store: StoreMaker) -> None:
    class FirstTwo(EventStore[Any]):
        def get(self, originator_id: Any, **kwargs: Any) -> list[Any]:
            return super().get(originator_id, **kwargs)[:2]

    plain = new_store()
    store = FirstTwo(plain.mapper, plain.recorder)
    dog = Dog("Fido")
    dog.add_trick("sit")
    dog.add_trick("stay")
    saved(store, dog)
    assert replay_aggregate(store, dog.id).tricks == ["sit"]
    snapshot = Dog.Snapshot.take(python_project(None, store.get(dog.id)))
    # The snapshot is at version 2; FirstTwo.get gives the events after it.
    assert replay_aggregate(store, dog.id, initial=snapshot).version == 3


def esox_mutate_calls(run: Callable[[], Any]) -> list[str]:
    """The esox mutate and apply functions that ``run`` calls in Python."""
    watched = {
        CanMutateAggregate.mutate.__code__,
        AggregateCreated.mutate.__code__,
        CanMutateAggregate.apply.__code__,
        DecoratedFuncCaller.apply.__code__,
    }
    called: list[str] = []

    def profile(frame: FrameType, what: str, arg: Any) -> None:
        if what == "call" and frame.f_code in watched:
            called.append(frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return called


def test_esox_mutate_and_apply_are_done_in_rust() -> None:
    dog = Dog("Fido")
    for i in range(3):
        dog.add_trick(f"trick {i}")
    account = Account("alice")
    account.credit(Decimal(1))
    account.debit(Decimal(1))
    person = Person("Ann")
    person.name = "Bea"
    page = Page(id="p", title="t")
    page.retitle("u")
    for agg in (dog, account, person, page):
        events = agg.collect_events()
        rust = esox_mutate_calls(lambda e=events: project_aggregate(None, e))
        python = esox_mutate_calls(lambda e=events: python_project(None, e))
        assert rust == []
        assert len(python) >= len(events)


def test_any_iterable_of_events() -> None:
    dog = Dog("Fido")
    dog.add_trick("sit")
    events = dog.collect_events()
    assert project_aggregate(None, iter(events)) == dog
    assert project_aggregate(None, tuple(events)) == dog
    assert project_aggregate(None, []) is None


def test_replayed_timestamps_are_the_events() -> None:
    dog = Dog("Fido")
    dog.add_trick("sit")
    events = dog.collect_events()
    replayed = project_aggregate(None, events)
    assert isinstance(replayed.modified_on, datetime)
    assert replayed.modified_on is events[-1].timestamp
    assert replayed.version is events[-1].originator_version


def test_patched_event_classes_are_seen_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dog = Dog("Fido")
    dog.add_trick("sit")
    events = dog.collect_events()
    assert project_aggregate(None, events) == dog  # the classes' plans are cached
    applied: list[str] = []

    def apply(self: Any, aggregate: Any) -> None:
        applied.append(getattr(self, "trick", "-"))

    # Patching the class itself.
    monkeypatch.setattr(Dog.TrickAdded, "apply", apply)  # type: ignore[attr-defined]
    assert projected_both_ways(lambda: events)[1].tricks == []
    assert applied == ["sit", "sit"]
    monkeypatch.undo()
    # Patching a base: DecoratedFuncCaller.apply's super().apply is now this.
    monkeypatch.setattr(Dog.Event, "apply", apply)
    assert projected_both_ways(lambda: events)[1].tricks == ["sit"]
    assert applied == ["sit", "sit", "-", "sit", "-", "sit"]
    monkeypatch.undo()

    # A base's own mutate comes before CanMutateAggregate's.
    def skip(self: Any, aggregate: Any) -> Any:
        if aggregate is None:
            return AggregateCreated.mutate(self, aggregate)
        return aggregate

    monkeypatch.setattr(Dog.Event, "mutate", skip)
    assert projected_both_ways(lambda: events)[1].version == 1
    monkeypatch.undo()
    assert project_aggregate(None, events) == dog


def test_list_subclass_iterates_its_own_way() -> None:
    class Reversed(list[Any]):
        def __iter__(self) -> Iterator[Any]:
            return reversed(list(super().__iter__()))

    dog = Dog("Fido")
    dog.add_trick("sit")
    events = Reversed(reversed(dog.collect_events()))
    assert projected_both_ways(lambda: events) == ("ok", dog)


def test_threads_replaying_at_once(new_store: StoreMaker) -> None:
    store = new_store()
    dogs = [Dog(f"dog {n}") for n in range(4)]
    for dog in dogs:
        for i in range(200):
            dog.add_trick(f"trick {i}")
    saved(store, *dogs)
    errors: list[BaseException] = []

    def replay_many(dog: Dog) -> None:
        try:
            for _ in range(10):
                assert replay_aggregate(store, dog.id) == dog
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=replay_many, args=(dog,)) for dog in dogs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@dataclass
class Kennel(Aggregate):
    name: str
    dogs: list[str] = field(default_factory=list)

    @event("DogAdmitted")
    def admit(self, dog: str) -> None:
        self.dogs.append(dog)


def test_default_factory_values_are_not_shared_with_the_created_event(
    new_store: StoreMaker,
) -> None:
    store = new_store()
    kennel = Kennel("north")
    kennel.admit("Fido")
    kennel.admit("Rex")
    saved(store, kennel)
    status, replayed = replayed_both_ways(store, kennel.id)
    assert status == "ok"
    assert replayed.dogs == ["Fido", "Rex"]
    # Replaying the same event objects twice gives the same aggregate: the
    # created event's list was copied, not appended to.
    events = list(store.get(kennel.id))
    assert project_aggregate(None, events).dogs == ["Fido", "Rex"]
    assert project_aggregate(None, events).dogs == ["Fido", "Rex"]
    assert events[0].dogs == []


class Tally(Aggregate):
    class Counted(Aggregate.Event):
        amount: int

        def _as_dict(self) -> dict[str, Any]:
            # The state that apply sees is not the event's __dict__.
            return {**vars(self), "amount": self.amount * 10}

    @event(Counted)
    def count(self, amount: int) -> None:
        self.total = getattr(self, "total", 0) + amount


def test_events_with_their_own_as_dict_go_through_python() -> None:
    tally = Tally()
    tally.count(1)
    tally.count(2)
    events = tally.collect_events()
    status, replayed = projected_both_ways(lambda: copy.deepcopy(events))
    assert status == "ok"
    assert replayed.total == 30
