"""eventsourcing's systems and projections run unchanged on the drop-in modules:
process recorders with tracking, subscriptions, waiting, notification logs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest
from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.projection import (
    EventSourcedProjection,
    EventSourcedProjectionRunner,
)
from eventsourcing.system import (
    MultiThreadedRunner,
    ProcessApplication,
    SingleThreadedRunner,
    System,
)

from tests.persistence_envs import POSTGRES, postgres_schema


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @event("TrickAdded")
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)


class DogSchool(Application[UUID]):
    def register_dog(self, name: str) -> UUID:
        dog = Dog(name)
        self.save(dog)
        return dog.id

    def add_trick(self, dog_id: UUID, trick: str) -> None:
        dog: Dog = self.repository.get(dog_id)
        dog.add_trick(trick)
        self.save(dog)


class Tally(Aggregate):
    """How many tricks were taught, counted downstream."""

    def __init__(self) -> None:
        self.count = 0

    @staticmethod
    def create_id() -> UUID:
        return uuid5(NAMESPACE_URL, "/tally")

    @event("Counted")
    def increment(self) -> None:
        self.count += 1


class TallyMixin(Application[UUID]):
    @singledispatchmethod
    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        """Other events are ignored."""

    @policy.register
    def _(
        self, domain_event: Dog.TrickAdded, processing_event: ProcessingEvent[UUID]
    ) -> None:
        try:
            tally: Tally = self.repository.get(Tally.create_id())
        except AggregateNotFoundError:
            tally = Tally()
            tally._id = Tally.create_id()
        tally.increment()
        processing_event.collect_events(tally)

    def count(self) -> int:
        try:
            tally: Tally = self.repository.get(Tally.create_id())
        except AggregateNotFoundError:
            return 0
        return tally.count


class TrickTally(TallyMixin, ProcessApplication[UUID]):
    pass


class TrickTallyProjection(TallyMixin, EventSourcedProjection[UUID]):
    topics = ()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    kind = request.param
    if kind == "memory":
        yield {"PERSISTENCE_MODULE": "esox.dropin.memory"}
    elif kind == "sqlite":
        # One database per application, as eventsourcing's SQLite tables are
        # not named after applications.
        yield {
            "PERSISTENCE_MODULE": "esox.dropin.sqlite",
            "DOGSCHOOL_SQLITE_DBNAME": str(tmp_path / "dogschool.sqlite"),
            "TRICKTALLY_SQLITE_DBNAME": str(tmp_path / "tricktally.sqlite"),
            "TRICKTALLYPROJECTION_SQLITE_DBNAME": str(tmp_path / "projection.sqlite"),
        }
    else:
        with ExitStack() as stack:
            schema = stack.enter_context(postgres_schema())
            yield {
                "PERSISTENCE_MODULE": "esox.dropin.postgres",
                "POSTGRES_SCHEMA": schema,
                "POSTGRES_POOL_SIZE": "2",
                **POSTGRES,
            }


def teach(school: DogSchool, n: int) -> int:
    dog_id = school.register_dog("Fido")
    for i in range(n):
        school.add_trick(dog_id, f"trick {i}")
    max_id = school.recorder.max_notification_id()
    assert max_id is not None
    return max_id


@pytest.mark.parametrize("runner_class", [SingleThreadedRunner, MultiThreadedRunner])
def test_process_application_follows_the_leader(
    env: dict[str, str], runner_class: type[Any]
) -> None:
    runner = runner_class(System(pipes=[[DogSchool, TrickTally]]), env=env)
    runner.start()
    try:
        school, tally = runner.get(DogSchool), runner.get(TrickTally)
        last = teach(school, 3)
        tally.recorder.wait("DogSchool", last, timeout=10)
        assert tally.count() == 3
        assert tally.recorder.max_tracking_id("DogSchool") == last
    finally:
        runner.stop()


def test_event_sourced_projection_subscribes(env: dict[str, str]) -> None:
    with EventSourcedProjectionRunner(
        application_class=DogSchool,
        projection_class=TrickTallyProjection,
        env=env,
    ) as runner:
        last = teach(runner.app, 2)
        runner.wait(last, timeout=10)
        assert runner.projection.count() == 2
        last = teach(runner.app, 3)
        runner.wait(last, timeout=10)
        assert runner.projection.count() == 5
