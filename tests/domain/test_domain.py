"""The domain model: events, aggregates, the @event decorator, snapshots."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, field
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import pytest

from esox.domain import (
    Aggregate,
    AggregateCreated,
    AggregateEvent,
    BaseAggregate,
    DomainEvent,
    OriginatorIDError,
    OriginatorVersionError,
    ProgrammingError,
    Snapshot,
    event,
    triggers,
)
from esox.examples.dogschool import Dog
from esox.utils import get_topic, resolve_topic
from tests.domain.models import Account, Counter, Note, Person, replay


def test_named_event_on_init_and_method_defines_event_classes():
    dog = Dog("Fido")
    dog.add_trick("roll over")
    assert dog.name == "Fido"
    assert dog.tricks == ["roll over"]
    assert isinstance(dog.id, UUID)
    assert dog.version == 2
    registered, trick_added = dog.collect_events()
    assert type(registered) is Dog.Registered
    assert type(trick_added) is Dog.TrickAdded
    assert issubclass(Dog.Registered, AggregateCreated)
    assert issubclass(Dog.TrickAdded, Dog.Event)
    assert registered.name == "Fido"
    assert registered.originator_topic == get_topic(Dog)
    assert trick_added.trick == "roll over"
    assert trick_added.originator_version == 2
    assert Dog.TrickAdded.__qualname__ == "Dog.TrickAdded"


def test_replaying_events_reconstructs_an_equal_aggregate():
    dog = Dog("Fido")
    dog.add_trick("roll over")
    dog.add_trick("play dead")
    copy = replay(dog.collect_events())
    assert copy == dog
    assert copy.tricks == ["roll over", "play dead"]
    assert copy.created_on < copy.modified_on


def test_events_are_immutable_and_timestamped_in_utc():
    dog = Dog("Fido")
    (registered,) = dog.collect_events()
    with pytest.raises(FrozenInstanceError):
        registered.name = "Rex"  # type: ignore[misc]
    assert isinstance(registered.timestamp, datetime)
    assert registered.timestamp.utcoffset() is not None
    assert registered.timestamp.utcoffset().total_seconds() == 0
    assert dog.created_on == registered.timestamp == dog.modified_on


def test_collect_events_empties_pending_events():
    dog = Dog("Fido")
    assert len(dog.pending_events) == 1
    assert len(dog.collect_events()) == 1
    assert dog.pending_events == []
    assert dog.collect_events() == []


def test_bare_event_decorator_names_event_after_method():
    class Cat(Aggregate):
        def __init__(self, name: str) -> None:
            self.name = name

        @event
        def change_name(self, name: str) -> None:
            self.name = name

    cat = Cat("Tom")
    cat.change_name("Felix")
    created, changed = cat.collect_events()
    assert type(created) is Cat.Created
    assert type(changed) is Cat.ChangeName
    assert replay([created, changed]).name == "Felix"


def test_triggers_is_an_alias_of_event():
    class Lamp(Aggregate):
        def __init__(self) -> None:
            self.on = False

        @triggers("SwitchedOn")
        def switch_on(self) -> None:
            self.on = True

    lamp = Lamp()
    lamp.switch_on()
    assert lamp.on
    assert type(lamp.collect_events()[1]) is Lamp.SwitchedOn


def test_positional_keyword_and_default_arguments():
    class Order(Aggregate):
        @event("Placed")
        def __init__(self, item: str, quantity: int = 1, *, note: str = "") -> None:
            self.item, self.quantity, self.note = item, quantity, note

        @event("Changed")
        def change(self, quantity: int, note: str = "none") -> None:
            self.quantity, self.note = quantity, note

    a = Order("tea")
    b = Order("tea", 3, note="x")
    c = Order(item="tea", quantity=2)
    assert (a.quantity, a.note) == (1, "")
    assert (b.quantity, b.note) == (3, "x")
    assert c.quantity == 2
    b.change(5)
    b.change(quantity=6, note="y")
    events = b.collect_events()
    assert events[1].note == "none"
    assert replay(events).quantity == 6
    assert replay(events).note == "y"


def test_wrong_arguments_raise_type_error_naming_the_problem():
    with pytest.raises(
        TypeError, match="missing 1 required positional argument: 'name'"
    ):
        Dog()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'age'"):
        Dog("Fido", age=3)  # type: ignore[call-arg]
    dog = Dog("Fido")
    with pytest.raises(
        TypeError, match="takes 2 positional arguments but 3 were given"
    ):
        dog.add_trick("a", "b")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values"):
        dog.add_trick("a", trick="b")  # type: ignore[call-arg]
    assert dog.version == 1


def test_explicit_event_class_in_decorator_runs_both_apply_and_method():
    account = Account("alice")
    account.credit(10)
    assert account.balance == 10
    assert account.history == [10]
    events = account.collect_events()
    assert isinstance(events[0], Account.Opened)
    assert isinstance(events[1], Account.Credited)
    assert isinstance(events[1], Account.Event)
    again = replay(events)
    assert again.balance == 10 and again.history == [10]


def test_nested_event_classes_with_apply_and_trigger_event():
    counter = Counter._create(Counter.Started, start=5)
    counter.increment(2)
    assert counter.count == 7
    assert issubclass(Counter.Incremented, Counter.Event)
    assert replay(counter.collect_events()).count == 7
    # Calling the class uses its only created event class.
    assert Counter(start=1).count == 1


def test_created_event_with_explicit_id_and_uuid5_create_id():
    class Page(Aggregate):
        @event("Created")
        def __init__(self, name: str) -> None:
            self.name = name

        @staticmethod
        def create_id(name: str) -> UUID:
            return uuid5(NAMESPACE_URL, f"/pages/{name}")

    page = Page("home")
    assert page.id == uuid5(NAMESPACE_URL, "/pages/home")
    given = uuid4()
    assert Page._create(Page.Created, id=given, name="x").id == given


def test_init_that_mentions_id_receives_it():
    class Named(Aggregate):
        def __init__(self, id: UUID, name: str) -> None:
            self.seen_id = id
            self.name = name

    given = uuid4()
    named = Named(id=given, name="n")
    assert named.id == given
    assert named.seen_id == given
    assert replay(named.collect_events()).seen_id == given


def test_dataclass_style_aggregate():
    class Book(Aggregate):
        title: str
        tags: list[str] = field(default_factory=list)

        @event("Tagged")
        def tag(self, tag: str) -> None:
            self.tags.append(tag)

    book = Book(title="Dune")
    assert book.collect_events()[0].tags == []
    book = Book(title="Dune")
    book.tag("scifi")
    assert book.title == "Dune" and book.tags == ["scifi"]
    again = replay(book.collect_events())
    assert again.title == "Dune" and again.tags == ["scifi"]


def test_aggregate_class_decorator():
    note = Note("a")
    note.edit("b")
    assert isinstance(note, Aggregate)
    assert replay(note.collect_events()).text == "b"


def test_property_setter_triggers_event():
    person = Person("Ann")
    person.name = "Bea"
    assert person.name == "Bea"
    events = person.collect_events()
    assert type(events[1]) is Person.NameChanged
    assert events[1].value == "Bea"
    assert replay(events).name == "Bea"


def test_subclass_of_aggregate_gets_its_own_created_event():
    class Puppy(Dog):
        pass

    puppy = Puppy("Rex")
    puppy.add_trick("sit")
    created = puppy.collect_events()[0]
    assert type(created) is Puppy.Registered
    assert created.originator_topic == get_topic(Puppy)
    assert type(replay([created])) is Puppy


def test_string_ids_with_generic_base_aggregate():
    class Ticket(BaseAggregate[str]):
        @event("Opened")
        def __init__(self, title: str) -> None:
            self.title = title

        @event("Closed")
        def close(self) -> None:
            self.closed = True

    ticket = Ticket(id="TICKET-1", title="bug")
    ticket.close()
    assert ticket.id == "TICKET-1"
    assert Ticket.originator_id_type is str
    assert Ticket.Closed.originator_id_type is str
    assert replay(ticket.collect_events()).closed
    with pytest.raises(NotImplementedError, match="create_id"):
        Ticket(title="no id")


def test_wrong_originator_id_and_version_are_refused():
    dog = Dog("Fido")
    other = Dog("Rex")
    dog.add_trick("sit")
    events = dog.collect_events()
    with pytest.raises(OriginatorIDError):
        events[1].mutate(other)
    with pytest.raises(OriginatorVersionError):
        events[1].mutate(replay(events))  # version 2 again on version 2
    assert other.tricks == []


def test_underscore_method_cannot_trigger_events():
    class Thing(Aggregate):
        @event("Done")
        def _(self) -> None:
            pass

    with pytest.raises(ProgrammingError):
        Thing()._()


def test_several_created_events_need_a_choice():
    class Shape(Aggregate):
        class Circle(Aggregate.Created):
            r: int

        class Square(Aggregate.Created):
            side: int

    with pytest.raises(TypeError, match="can't decide"):
        Shape()
    square = Shape._create(Shape.Square, side=2)  # type: ignore[attr-defined]
    assert type(square.collect_events()[0]) is Shape.Square


def test_snapshot_takes_state_and_reconstructs_without_init():
    dog = Dog("Fido")
    dog.add_trick("sit")
    dog.collect_events()
    snapshot = Snapshot.take(dog)
    assert snapshot.originator_id == dog.id
    assert snapshot.originator_version == 2
    assert snapshot.topic == get_topic(Dog)
    assert "_pending_events" not in snapshot.state
    assert snapshot.state["name"] == "Fido"
    restored = snapshot.mutate(None)
    assert restored == dog
    assert restored.pending_events == []
    assert type(Dog.Snapshot.take(dog)) is Snapshot


def test_snapshot_state_is_upcast_to_current_class_version():
    class Robot(Aggregate):
        class_version = 3

        def __init__(self, model: str) -> None:
            self.model = model
            self.colour = "grey"
            self.legs = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["colour"] = "grey"

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["legs"] = 2

    robot = Robot("R2")
    old = Snapshot.take(robot)
    assert old.state["class_version"] == 3
    v1_state = {k: v for k, v in old.state.items() if k not in ("colour", "legs")}
    v1_state.pop("class_version")
    v1 = Snapshot(
        originator_id=robot.id,
        originator_version=1,
        timestamp=old.timestamp,
        topic=old.topic,
        state=v1_state,
    )
    restored = v1.mutate(None)
    assert restored.colour == "grey" and restored.legs == 2


def test_topics_resolve_back_to_classes():
    assert get_topic(Dog) == "esox.examples.dogschool:Dog"
    assert resolve_topic(get_topic(Dog)) is Dog
    assert resolve_topic(get_topic(Dog.TrickAdded)) is Dog.TrickAdded
    assert resolve_topic("esox.domain:Aggregate") is Aggregate


def test_domain_event_subclasses_are_frozen_dataclasses():
    class Pinged(DomainEvent):
        host: str

    ping = Pinged(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=Pinged.create_timestamp(),
        host="h",
    )
    assert ping == Pinged(**ping.__dict__)
    with pytest.raises(FrozenInstanceError):
        ping.host = "x"  # type: ignore[misc]
    assert issubclass(AggregateEvent, DomainEvent)
