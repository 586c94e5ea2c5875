"""In-process runners hand followers what was recorded, decoded by the follower."""

from __future__ import annotations

import re
import threading
from typing import Any
from uuid import UUID

import pytest

from esox import Aggregate, Application, event
from esox.application import ProcessingEvent
from esox.persistence import JSONTranscoder, Transcoding
from esox.system import (
    EventProcessingError,
    Follower,
    MultiThreadedRunner,
    Runner,
    SingleThreadedRunner,
    System,
)

RUNNERS = [SingleThreadedRunner, MultiThreadedRunner]


class Basket(Aggregate):
    @event("Filled")
    def __init__(self, things: list[str]) -> None:
        self.things = things


class Baskets(Application[UUID]):
    pass


class Watcher(Follower[UUID]):
    """Notes the things of each Filled event; waits at a "gate" basket."""

    gate = threading.Event()
    seen: list[list[str]] = []

    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        if domain_event.things == ["gate"]:
            assert self.gate.wait(10), "the test never opened the gate"
            return
        self.seen.append(list(domain_event.things))


@pytest.mark.parametrize("runner_cls", RUNNERS)
def test_follower_processes_what_was_recorded_not_the_live_event(
    runner_cls: type[Runner],
) -> None:
    Watcher.gate.clear()
    Watcher.seen = []
    with runner_cls(System([[Baskets, Watcher]])) as runner:
        baskets = runner.get(Baskets)
        # Hold the follower in its policy, so the next prompt waits (in the
        # single-threaded runner's queue, or the follower thread's inbox).
        gate_saver = threading.Thread(target=baskets.save, args=[Basket(["gate"])])
        gate_saver.start()
        things = ["a", "b"]
        basket = Basket(things)
        baskets.save(basket)
        basket.things.append("b")  # the event's list too, after it was recorded
        Watcher.gate.set()
        gate_saver.join(10)
        runner.wait()
        recorded = baskets.repository.get(basket.id).things
        assert recorded == ["a", "b"]
        assert Watcher.seen == [recorded]


class Colour:
    def __init__(self, name: str) -> None:
        self.name = name


class ColourAsName(Transcoding):
    type = Colour
    name = "colour"

    def encode(self, obj: Colour) -> str:
        return obj.name

    def decode(self, data: str) -> Colour:
        return Colour(data)


class Painted(Aggregate):
    @event("Painted")
    def __init__(self, colour: Colour) -> None:
        self.colour = colour


class Painters(Application[UUID]):
    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        transcoder.register(ColourAsName())


class ColourBlind(Follower[UUID]):
    """Follows Painters without their Colour transcoding."""

    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        pass


def without_ids(message: str) -> str:
    return re.sub(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", message
    )


def catch_up_error() -> str:
    """The error of a ColourBlind catching up with a Painters log."""
    with Painters() as painters, ColourBlind() as follower:
        painters.save(Painted(Colour("red")))
        follower.follow(Painters.name, painters.notification_log)
        with pytest.raises(EventProcessingError) as caught:
            follower.pull_and_process(Painters.name)
    return without_ids(str(caught.value))


def test_single_threaded_runner_fails_like_catch_up_without_a_transcoding() -> None:
    expected = catch_up_error()
    assert "are the upstream's transcodings registered here?" in expected
    with SingleThreadedRunner(System([[Painters, ColourBlind]])) as runner:
        with pytest.raises(EventProcessingError) as caught:
            runner.get(Painters).save(Painted(Colour("red")))
        assert without_ids(str(caught.value)) == expected


def test_multithreaded_runner_fails_like_catch_up_without_a_transcoding() -> None:
    expected = catch_up_error()
    runner = MultiThreadedRunner(System([[Painters, ColourBlind]]))
    runner.start()
    try:
        runner.get(Painters).save(Painted(Colour("red")))
        with pytest.raises(EventProcessingError) as caught:
            runner.wait()
        assert without_ids(str(caught.value)) == expected
    finally:
        with pytest.raises(EventProcessingError):
            runner.stop()
