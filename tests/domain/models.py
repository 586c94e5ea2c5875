"""The domain models the domain tests share: every way esox lets an aggregate
say what its events do (replayed both ways by test_replay)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from esox.domain import Aggregate, BaseAggregate, aggregate, event


def replay(events: Any) -> Any:
    """The aggregate that ``events`` make, by their own mutate methods."""
    agg = None
    for e in events:
        agg = e.mutate(agg)
    return agg


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @event("TrickAdded")
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)

    @event
    def rename(self, name: str) -> None:
        self.name = name

    @event("TrickRefused")
    def refuse(self, trick: str) -> None:
        if trick in self.tricks:
            msg = f"{self.name} already knows {trick}"
            raise ValueError(msg)


class Account(Aggregate):
    class Opened(Aggregate.Created):
        owner: str

    class Credited(Aggregate.Event):
        amount: Decimal

        def apply(self, aggregate: Any) -> None:
            aggregate.history.append(self.amount)

    class Debited(Aggregate.Event):
        amount: Decimal

        def apply(self, aggregate: Any) -> None:
            aggregate.balance -= self.amount

    @event(Opened)
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = Decimal(0)
        self.history: list[Decimal] = []

    @event(Credited)
    def credit(self, amount: Decimal) -> None:
        self.balance += amount

    def debit(self, amount: Decimal) -> None:
        self.trigger_event(self.Debited, amount=amount)


class Counter(Aggregate):
    class Started(Aggregate.Created):
        start: int

        def apply(self, aggregate: Any) -> None:
            aggregate.count = self.start

    class Incremented(Aggregate.Event):
        by: int

        def apply(self, aggregate: Any) -> None:
            aggregate.count += self.by

    class Noted(Aggregate.Event):
        """An event with its own mutate: called as is."""

        text: str

        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            aggregate.notes = [*getattr(aggregate, "notes", []), self.text]
            return aggregate

    class Discarded(Aggregate.Event):
        def mutate(self, aggregate: Any) -> Any:
            return None

    def increment(self, by: int) -> None:
        self.trigger_event(self.Incremented, by=by)


class Person(Aggregate):
    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    @event("NameChanged")
    def name(self, value: str) -> None:
        self._name = value


class Book(Aggregate):
    title: str
    tags: list[str]
    pages: int = 100

    @event("Tagged")
    def tag(self, tag: str, weight: int = 1) -> None:
        self.tags.append(f"{tag}:{weight}")


@aggregate
class Note:
    def __init__(self, text: str) -> None:
        self.text = text

    @event("Edited")
    def edit(self, text: str) -> None:
        self.text = text


class Page(BaseAggregate[str]):
    """An aggregate with str ids whose __init__ receives its id."""

    @event("Created")
    def __init__(self, id: str, title: str) -> None:
        self.slug = id
        self.title = title

    @event("Retitled")
    def retitle(self, title: str) -> None:
        self.title = title


class Cat(Aggregate):
    """Fed events were once stored without ``food`` (class version 1)."""

    class Fed(Aggregate.Event):
        class_version = 2
        food: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["food"] = "kibble"

    @event("Adopted")
    def __init__(self, name: str) -> None:
        self.name = name
        self.meals: list[str] = []

    @event(Fed)
    def feed(self, food: str) -> None:
        self.meals.append(food)


class Robot(Aggregate):
    """An aggregate whose attribute access is its own: left to Python."""

    @event("Built")
    def __init__(self, model: str) -> None:
        self.model = model
        self.moves: list[str] = []

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        self.__dict__.setdefault("setattr_calls", 0)
        self.__dict__["setattr_calls"] += 1

    @event("Moved")
    def move(self, direction: str) -> None:
        self.moves.append(direction)


class Strange(Aggregate):
    """An event with a field named ``apply`` shadows its apply method."""

    class Shadowed(Aggregate.Event):
        apply: int  # type: ignore[assignment]

    def __init__(self) -> None:
        self.seen = 0
