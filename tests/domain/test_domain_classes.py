"""How aggregate classes are defined and called: eventsourcing 9.5's rules
(and messages, which its users' tests assert), esox's fast creation path."""

from __future__ import annotations

import inspect
import os
import pickle
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Generic, TypeVar
from uuid import NAMESPACE_URL, RFC_4122, UUID, uuid4, uuid5

import pytest

import esox.domain
from esox.domain import (
    Aggregate,
    AggregateCreated,
    AggregateEvent,
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    datetime_now_with_tzinfo,
    event,
)
from esox.domain.aggregate import random_uuid
from tests.domain.models import replay


def test_random_uuid_is_a_valid_version_4_uuid():
    ids = {random_uuid() for _ in range(1000)}
    assert len(ids) == 1000
    some = ids.pop()
    assert some.version == 4 and some.variant == RFC_4122
    assert UUID(str(some)) == some and hash(UUID(str(some))) == hash(some)
    assert pickle.loads(pickle.dumps(some)) == some


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_random_uuids_of_a_forked_child_are_its_own():
    random_uuid()  # the parent has random values made ahead
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write_end, random_uuid().bytes)
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read_end, 16) != random_uuid().bytes


def test_assigning_domain_tzinfo_changes_event_timestamps():
    alt = timezone(timedelta(hours=1), "Alt")
    original = esox.domain.TZINFO
    esox.domain.TZINFO = alt
    try:
        assert datetime_now_with_tzinfo().tzinfo is alt
        assert Aggregate().created_on.tzinfo is alt
    finally:
        esox.domain.TZINFO = original
    assert Aggregate().created_on.tzinfo is original


def test_str_id_for_uuid_events_is_refused():
    class Named(Aggregate):
        def __init__(self, name: str) -> None:
            self.name = name

        @staticmethod
        def create_id(name: str) -> str:  # type: ignore[override]
            return name

    with pytest.raises(
        TypeError, match="was initialized with a non-UUID originator_id"
    ):
        Named("x")
    with pytest.raises(TypeError, match="non-UUID originator_id: 'x'"):
        AggregateEvent(originator_id="x", originator_version=1, timestamp=None)  # type: ignore[arg-type]


def test_create_id_must_return_an_id_and_be_static():
    class Five(Aggregate):
        @staticmethod
        def create_id() -> int:  # type: ignore[override]
            return 5

    with pytest.raises(TypeError, match=r"Five\.create_id did not return UUID or str"):
        Five()
    with pytest.raises(TypeError, match="is not a static or class method"):

        class Bound(Aggregate):
            def create_id(self) -> UUID:  # type: ignore[override]
                return uuid4()


def test_id_is_an_argument_only_where_declared():
    class Declared(Aggregate):
        def __init__(self, id: UUID) -> None:
            self.seen = id

    given = uuid4()
    assert Declared(id=given).seen == given
    with pytest.raises(
        TypeError, match=r"missing 1 required positional argument: 'id'"
    ):
        Declared()  # type: ignore[call-arg]

    @dataclass
    class Annotated(Aggregate):
        id: UUID  # type: ignore[assignment]
        name: str

    with pytest.raises(
        TypeError, match=r"missing 2 required positional arguments: 'id' and 'name'"
    ):
        Annotated()  # type: ignore[call-arg]
    assert Annotated(given, "n").id == given
    assert Annotated(given, "n") != Annotated(uuid4(), "n")

    class Undeclared(Aggregate):
        def __init__(self, name: str) -> None:
            self.name = name

    with pytest.raises(TypeError, match="got an unexpected keyword argument 'id'"):
        Undeclared(id=given, name="n")  # type: ignore[call-arg]

    class NoCreateId(BaseAggregate[str]):  # esox: such a class takes id=
        def __init__(self, name: str) -> None:
            self.name = name

    assert NoCreateId(id="a", name="n").id == "a"


def test_init_given_by_dataclass_after_the_class_statement():
    @dataclass
    class Late(Aggregate):
        pass

    with pytest.raises(
        TypeError, match=r"Late\.__init__\(\) takes 1 positional argument but 2"
    ):
        Late(0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'value'"):
        Late(value=0)  # type: ignore[call-arg]
    assert Late().version == 1


def test_construction_errors_name_the_event_class():
    with pytest.raises(
        TypeError,
        match=r"^Unable to construct 'Aggregate.Event' event: .*'originator_topic'",
    ):
        Aggregate._create(event_class=Aggregate.Event)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^Can't construct event <class 'esox.domain.Aggregate.Event'>: .*'b'",
    ):
        Aggregate().trigger_event(Aggregate.Event, b=23)


def test_subclass_has_its_own_subclass_of_each_inherited_event():
    class Parent(Aggregate):
        class Started(Aggregate.Created):
            pass

        class Ended(Aggregate.Event):
            pass

        @event("Renamed")
        def rename(self, name: str) -> None:
            self.name = name

    class Child(Parent):
        pass

    assert Child.Ended.__qualname__.endswith("Child.Ended")
    assert issubclass(Child.Ended, Parent.Ended) and issubclass(
        Child.Ended, Child.Event
    )
    assert issubclass(Child.Renamed, Parent.Renamed)
    child = Child()
    child.rename("x")
    assert type(child.pending_events[0]) is Child.Started
    assert replay(child.collect_events()).name == "x"


def test_timestamp_parameter_is_the_event_timestamp():
    then = datetime(2000, 1, 1, tzinfo=UTC)

    class Order(Aggregate):
        def __init__(self, name: str, timestamp: datetime | None = None) -> None:
            self.name = name

        class Started(AggregateCreated):
            name: str

        @event("Confirmed")
        def confirm(self, timestamp: datetime | None = None) -> None:
            self.confirmed_at = timestamp

    order = Order("o", timestamp=then)
    assert order.created_on == then
    order.confirm(timestamp=then + timedelta(days=1))
    assert order.modified_on == order.confirmed_at == then + timedelta(days=1)
    order.confirm()
    assert order.confirmed_at == order.modified_on > then + timedelta(days=1)
    assert replay(order.collect_events()).confirmed_at == order.confirmed_at


def test_command_methods_look_like_the_decorated_methods():
    class Doc(Aggregate):
        @event
        def edit(self, text: str) -> None:
            """Edit the text."""
            self.text = text

    doc = Doc()
    assert doc.edit.__module__ == __name__ == Doc.edit.__module__
    assert doc.edit.__name__ == "edit" and doc.edit.__doc__ == "Edit the text."
    assert str(inspect.signature(doc.edit)) == "(text: 'str') -> 'None'"
    Doc.edit(doc, "via class")
    assert doc.text == "via class"
    with pytest.raises(TypeError, match=r"^Expected aggregate as first argument$"):
        Doc.edit()  # type: ignore[call-arg]


def test_property_of_a_decorated_setter_with_an_inferred_name():
    class Counter(Aggregate):
        def get_value(self) -> int:
            return self._value

        def value_changed(self, x: int) -> None:
            self._value = x

        value = property(get_value, event(value_changed))

    counter = Counter()
    counter.value = 1
    assert counter.value == 1
    assert type(counter.pending_events[1]) is Counter.ValueChanged  # type: ignore[attr-defined]


MISUSES = {
    "*values not supported by decorator on __init__()": """
        def __init__(self, *values): pass
    """,
    "**kw not supported by decorator on method()": """
        @event
        def method(self, **kw): pass
    """,
    "positional only args arg not supported by @event decorator on method(): x": """
        @event
        def method(self, x, /): pass
    """,
    "is subclass of CanInitAggregate": """
        @event(Aggregate.Created)
        def method(self): pass
    """,
    "@event decorator on __init__ has neither event name nor class": """
        @event
        def __init__(self): pass
    """,
    "@event decorator on @value.setter requires event name or class": """
        @property
        def value(self): pass
        @event
        @value.setter
        def value(self, x): pass
    """,
    "Done event class used in more than one decorator": """
        class Done(AggregateEvent): pass
        @event(Done)
        def a(self): pass
        @event(Done)
        def b(self): pass
    """,
}


@pytest.mark.parametrize(("message", "body"), MISUSES.items())
def test_misuse_of_event_is_refused_with_eventsourcings_messages(message, body):
    source = "class Wrong(Aggregate):\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )
    namespace = {
        "Aggregate": Aggregate,
        "AggregateEvent": AggregateEvent,
        "event": event,
    }
    with pytest.raises(TypeError) as raised:
        exec(source, namespace)
    assert message in str(raised.value)


def test_base_aggregate_has_no_events_of_its_own():
    with pytest.raises(
        TypeError, match="Please define or use subclasses of BaseAggregate"
    ):
        BaseAggregate()
    with pytest.raises(TypeError, match="Base event class 'Event' not defined"):

        class NoBase(BaseAggregate[UUID]):
            class Happened(AggregateEvent):
                pass

    class NoCreated(BaseAggregate[UUID]):
        @staticmethod
        def create_id() -> UUID:
            return uuid4()

    with pytest.raises(
        TypeError, match="No \"created\" event classes defined on class 'NoCreated'"
    ):
        NoCreated()
    with pytest.raises(TypeError, match='Can\'t define "created" event class'):

        class NoStarted(BaseAggregate[UUID], created_event_name="Started"):
            pass


def test_string_id_aggregate_without_events_gets_esoxs():
    class Ticket(BaseAggregate[str]):
        @event("Opened")
        def __init__(self, title: str) -> None:
            self.title = title

    ticket = Ticket(id="T-1", title="bug")
    (opened,) = ticket.collect_events()
    assert (
        issubclass(Ticket.Opened, Ticket.Event)
        and Ticket.Opened.originator_id_type is str
    )
    assert replay([opened]).title == "bug"


def test_generic_event_classes_keep_their_hierarchy_when_redefined():
    @dataclass(frozen=True)
    class Shared:
        system_id: str

    T = TypeVar("T", bound=Shared)

    class Holder(Aggregate):
        class Something(Aggregate.Event, Generic[T]):
            shared: T

        class Else(Something[Shared]):
            pass

    assert issubclass(Holder.Else, Holder.Something)


def test_creation_plan_follows_a_patched_created_event():
    class Plain(Aggregate):
        def __init__(self, name: str) -> None:
            self.name = name

    assert Plain("a").name == "a"  # planned

    def apply(self: Any, aggregate: Any) -> None:
        aggregate.applied = True

    Plain.Created.apply = apply  # type: ignore[method-assign]
    assert Plain("b").applied


def test_uuid5_ids_and_other_create_ids_take_the_step_by_step_path():
    class Page(Aggregate):
        def __init__(self, name: str) -> None:
            self.name = name

        @staticmethod
        def create_id(name: str) -> UUID:
            return uuid5(NAMESPACE_URL, f"/pages/{name}")

    assert Page("home").id == uuid5(NAMESPACE_URL, "/pages/home")
    assert isinstance(Aggregate().id, UUID)
    assert issubclass(Page.Created, CanInitAggregate)
    assert issubclass(Page.Event, CanMutateAggregate)


def test_aggregate_without_init_passes_keywords_to_its_created_event():
    class Started(Aggregate):  # esox: eventsourcing refuses name= here
        class Began(AggregateCreated):
            name: str

    (began,) = Started(name="x").collect_events()
    assert began.name == "x"
    with pytest.raises(TypeError, match=r"Started\(\) takes no positional arguments"):
        Started("x")


def test_triggered_event_fields_keep_their_order_and_patches_are_seen():
    class Mover(Aggregate):
        @event("Moved")
        def move(self, x: int, y: int) -> None:
            self.position = (x, y)

    mover = Mover()
    mover.move(y=1, x=2)
    moved = mover.pending_events[1]
    fields = ["originator_id", "originator_version", "timestamp", "x", "y"]
    assert list(vars(moved)) == fields  # as eventsourcing stores them
    assert mover.position == (2, 1) and mover.version == 2

    def apply(self: Any, aggregate: Any) -> None:
        aggregate.patched = True

    Mover.Moved.apply = apply  # type: ignore[method-assign]
    mover.move(3, 4)
    assert mover.patched and mover.version == 3


def test_string_id_aggregate_events_are_named_as_an_aggregates():
    class Bare(BaseAggregate[str]):
        pass

    (created,) = Bare(id="b").collect_events()
    assert type(created).__qualname__.endswith("Bare.Created")
    assert Bare.Event.__qualname__.endswith("Bare.Event")
