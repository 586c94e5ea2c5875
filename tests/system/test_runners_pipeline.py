"""eventsourcing's "new" runners: stale prompts, the pipeline's typed errors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from esox.persistence import Notification
from esox.system import (
    EventProcessingError,
    NewMultiThreadedRunner,
    NewSingleThreadedRunner,
    NotificationConvertingError,
    NotificationPullingError,
    System,
)
from tests.system_apps import Copier, Items


class BrokenPulling(Copier):
    def pull_notifications(
        self,
        leader_name: str,
        start: int | None,
        stop: int | None = None,
        *,
        inclusive_of_start: bool = True,
    ) -> Iterator[Sequence[Notification]]:
        msg = "pulling is broken"
        raise RuntimeError(msg)


class BrokenConverting(Copier):
    def convert_notifications(
        self, leader_name: str, notifications: Sequence[Notification]
    ) -> list[Any]:
        msg = "converting is broken"
        raise RuntimeError(msg)


def test_a_prompt_older_than_one_seen_is_dropped_and_its_gap_pulled_later():
    with NewSingleThreadedRunner(System(pipes=[[Items, Copier]])) as runner:
        items, copier = runner.get(Items), runner.get(Copier)
        items.create("first")
        # As if this prompt came after a later one: its predecessor is older.
        items.previous_max_notification_id = 0  # type: ignore[attr-defined]
        items.create("second")
        assert [r[2] for r in copier.records()] == ["first"]
        # The next prompt shows a gap: what was dropped is pulled, not lost.
        items.create("third")
        assert [r[2] for r in copier.records()] == ["first", "second", "third"]


def test_pipeline_loses_no_event_of_a_dropped_prompt():
    with NewMultiThreadedRunner(System(pipes=[[Items, Copier]])) as runner:
        items = runner.get(Items)
        items.create("first")
        runner.wait()
        items.previous_max_notification_id = 0  # type: ignore[attr-defined]
        items.create("second")
        items.create("third")
        runner.wait()
        labels = [r[2] for r in runner.get(Copier).records()]
        assert labels == ["first", "second", "third"]


def test_pipeline_catches_up_on_start_and_processes_prompts():
    system = System(pipes=[[Items, Copier]])
    runner = NewMultiThreadedRunner(system)
    runner.get(Items).create_many(["a", "b"])
    with runner:
        runner.get(Items).create("c")
        runner.wait()
        assert [r[1:] for r in runner.get(Copier).records()] == [
            (1, "a"),
            (2, "b"),
            (3, "c"),
        ]


@pytest.mark.parametrize(
    ("follower", "error", "message"),
    [
        (BrokenPulling, NotificationPullingError, "pulling is broken"),
        (BrokenConverting, NotificationConvertingError, "converting is broken"),
        (Copier, EventProcessingError, "policy refused 'boom'"),
    ],
)
def test_pipeline_stop_raises_the_failed_stage_error(
    follower: type[Copier], error: type[Exception], message: str
):
    runner = NewMultiThreadedRunner(System(pipes=[[Items, follower]]))
    runner.start()
    runner.get(Items).create("boom")
    assert runner.has_errored.wait(timeout=5)
    with pytest.raises(error, match=message) as info:
        runner.stop()
    assert isinstance(info.value.__cause__, Exception)
    assert any(follower.name in note for note in info.value.__notes__)
    assert not runner.apps


def test_pipeline_watch_for_errors_returns_false_when_nothing_fails():
    with NewMultiThreadedRunner(System(pipes=[[Items, Copier]])) as runner:
        assert runner.watch_for_errors(timeout=0.05) is False
