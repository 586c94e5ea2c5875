"""The single-threaded and multi-threaded runners, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from esox.system import (
    EventProcessingError,
    MultiThreadedRunner,
    NewMultiThreadedRunner,
    NewSingleThreadedRunner,
    Runner,
    RunnerAlreadyStartedError,
    SingleThreadedRunner,
    System,
    SystemDefinitionError,
)
from tests.persistence_envs import persistence_env
from tests.system_apps import (
    Auditor,
    Copier,
    Items,
    Tagged,
    fan_out,
    one_edge,
    two_edges,
)

RUNNERS: dict[str, type[Runner[Any]]] = {
    "single": SingleThreadedRunner,
    "threads": MultiThreadedRunner,
    # eventsourcing's "new" runners, on the same contract.
    "new-single": NewSingleThreadedRunner,
    "pipeline": NewMultiThreadedRunner,
}
CASES = [
    ("single", "memory"),
    ("single", "sqlite"),
    ("threads", "memory"),
    ("threads", "sqlite"),
    ("threads", "postgres"),
    ("new-single", "memory"),
    ("pipeline", "memory"),
    ("pipeline", "sqlite"),
]


@contextmanager
def system_env(kind: str, tmp_path: Path, system: System) -> Iterator[dict[str, str]]:
    """Persistence settings, with an SQLite file per application."""
    with persistence_env(kind, tmp_path, "system") as env:
        if kind == "sqlite":
            env = {"PERSISTENCE_MODULE": "esox.sqlite"} | {
                f"{name.upper()}_SQLITE_DBNAME": str(tmp_path / f"{name}.db")
                for name in system.names
            }
        yield env


@pytest.fixture(params=CASES, ids=["-".join(c) for c in CASES])
def case(request: pytest.FixtureRequest) -> tuple[type[Runner], str]:
    runner_kind, persistence = request.param
    return RUNNERS[runner_kind], persistence


@contextmanager
def running(
    case: tuple[type[Runner[Any]], str], tmp_path: Path, system: System
) -> Iterator[Runner[Any]]:
    """The case's runner, started on ``system``, on the case's persistence."""
    runner_cls, persistence = case
    with (
        system_env(persistence, tmp_path, system) as env,
        runner_cls(system, env=env) as runner,
    ):
        yield runner


def labels(records: list[tuple[str, int, str]]) -> list[str]:
    return [label for _, _, label in records]


def test_one_edge_processes_every_event_once_in_order(case: Any, tmp_path: Path):
    with running(case, tmp_path, one_edge) as runner:
        items = runner.get(Items)
        for i in range(20):
            items.create(f"item {i}")
        items.create_many(["x", "y", "z"])
        runner.wait()
        assert runner.get(Copier).records() == [
            ("Items", i + 1, label)
            for i, label in enumerate(
                [f"item {i}" for i in range(20)] + ["x", "y", "z"]
            )
        ]


def test_two_edges_process_events_down_the_pipe(case: Any, tmp_path: Path):
    with running(case, tmp_path, two_edges) as runner:
        items = runner.get(Items)
        item_id = items.create("a")
        items.tag(item_id, "t")
        runner.wait()
        assert runner.get(Copier).records() == [("Items", 1, "a"), ("Items", 2, "t")]
        # The auditor processed the copier's two Record.Made events.
        assert runner.get(Auditor).records() == [("Copier", 1, "a"), ("Copier", 2, "t")]


@pytest.mark.parametrize("persistence", ["sqlite", "postgres"])
@pytest.mark.parametrize("runner_kind", ["single", "threads"])
def test_follower_started_late_catches_up_once(
    runner_kind: str, persistence: str, tmp_path: Path
):
    runner_cls = RUNNERS[runner_kind]
    with system_env(persistence, tmp_path, two_edges) as env:
        with Items(env) as items:  # the system isn't running yet
            items.create_many(["a", "b"])
            items.create("c")
        with runner_cls(two_edges, env=env) as runner:
            runner.wait()
            assert labels(runner.get(Auditor).records()) == ["a", "b", "c"]
            runner.get(Items).create("d")
            runner.wait()
        with Items(env) as items:  # stopped again
            items.create("e")
        with runner_cls(two_edges, env=env) as runner:
            runner.wait()
            assert labels(runner.get(Copier).records()) == ["a", "b", "c", "d", "e"]
            assert runner.get(Auditor).records() == [
                ("Copier", i, label) for i, label in enumerate("abcde", start=1)
            ]


def test_followers_process_only_their_topics(case: Any, tmp_path: Path):
    with running(case, tmp_path, fan_out) as runner:
        items = runner.get(Items)
        a = items.create("a")
        items.tag(a, "x")
        items.create("b")
        items.tag(a, "y")
        runner.wait()
        assert labels(runner.get(Copier).records()) == ["a", "x", "b", "y"]
        assert runner.get(Tagged).records() == [("Items", 2, "x"), ("Items", 4, "y")]


def test_single_threaded_runner_processes_before_save_returns():
    with SingleThreadedRunner(two_edges) as runner:
        runner.get(Items).create("a")
        assert labels(runner.get(Auditor).records()) == ["a"]


def test_single_threaded_runner_raises_policy_errors_from_the_save():
    with SingleThreadedRunner(fan_out) as runner:
        items = runner.get(Items)
        a = items.create("a")
        with pytest.raises(EventProcessingError) as info:
            items.create("boom")
        assert "Copier failed to process notification 2 of 'Items'" in str(info.value)
        assert isinstance(info.value.__cause__, ValueError)
        # The failing follower is stuck at the bad event, and says so again;
        # the events are recorded, and the other follower has its turn.
        with pytest.raises(EventProcessingError, match="notification 2 of 'Items'"):
            items.tag(a, "x")
        assert labels(runner.get(Tagged).records()) == ["x"]
        assert labels(runner.get(Copier).records()) == ["a"]
        assert runner.get(Items).recorder.max_notification_id() == 3


def test_multithreaded_runner_surfaces_a_followers_error(tmp_path: Path):
    runner = MultiThreadedRunner(fan_out)
    runner.start()
    items = runner.get(Items)
    items.create("boom")  # the save succeeds: the follower fails in its thread
    a = items.create("a")
    items.tag(a, "x")
    with pytest.raises(EventProcessingError, match="Copier failed to process") as info:
        runner.wait(timeout=5)
    assert isinstance(info.value.__cause__, ValueError)
    assert runner.has_errored.is_set()
    with pytest.raises(EventProcessingError, match="Copier failed"):
        runner.get(Items)
    with pytest.raises(EventProcessingError, match="Copier failed"):
        runner.stop()
    assert not runner.is_started


def test_multithreaded_runner_watch_for_errors_stops_the_runner():
    runner = MultiThreadedRunner(one_edge)
    runner.start()
    assert runner.watch_for_errors(timeout=0.05) is False
    runner.get(Items).create("boom")
    with pytest.raises(EventProcessingError):
        runner.watch_for_errors(timeout=5)
    assert not runner.is_started and not runner.apps


def test_multithreaded_runner_processes_commands_from_many_threads_once():
    with MultiThreadedRunner(two_edges) as runner:
        items = runner.get(Items)

        def create(prefix: str) -> None:
            for i in range(50):
                items.create(f"{prefix}{i}")

        threads = [threading.Thread(target=create, args=(p,)) for p in "abcd"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        runner.wait()
        copied = runner.get(Copier).records()
        assert [n for _, n, _ in copied] == list(range(1, 201))
        audited = runner.get(Auditor).records()
        assert [n for _, n, _ in audited] == list(range(1, 201))
        assert sorted(labels(audited)) == sorted(labels(copied))


def test_multithreaded_follower_pulls_instead_of_queueing_past_its_inbox_limit(
    monkeypatch: pytest.MonkeyPatch,
):
    from esox.system.runners import FollowerThread

    monkeypatch.setattr(FollowerThread, "max_inbox", 3)
    with MultiThreadedRunner(one_edge) as runner:
        thread = runner.threads["Copier"]
        with runner.get(Copier).processing_lock:  # hold the follower up
            for i in range(10):
                runner.get(Items).create(str(i))
            assert thread._inbox_size <= 3
        runner.wait()
        assert labels(runner.get(Copier).records()) == [str(i) for i in range(10)]


@pytest.mark.parametrize("runner_cls", RUNNERS.values())
def test_runner_refuses_to_start_twice(runner_cls: type[Runner]):
    with runner_cls(one_edge) as runner, pytest.raises(RunnerAlreadyStartedError):
        runner.start()


@pytest.mark.parametrize("runner_cls", RUNNERS.values())
def test_runner_can_start_again_after_stopping(
    runner_cls: type[Runner], tmp_path: Path
):
    with system_env("sqlite", tmp_path, one_edge) as env:
        runner = runner_cls(one_edge, env=env)
        runner.start()
        runner.get(Items).create("a")
        runner.stop()
        with pytest.raises(RuntimeError, match="stopped"):
            runner.get(Items)
        runner.start()
        runner.get(Items).create("b")
        runner.wait()
        assert labels(runner.get(Copier).records()) == ["a", "b"]
        runner.stop()


def test_runner_get_names_the_applications_of_the_system():
    with SingleThreadedRunner(one_edge) as runner:
        with pytest.raises(KeyError, match="Auditor is not in this system"):
            runner.get(Auditor)
        assert isinstance(runner.get(Items), Items)


def test_runner_refuses_applications_sharing_an_sqlite_file(tmp_path: Path):
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": str(tmp_path / "x.db")}
    with pytest.raises(SystemDefinitionError, match="would share one SQLite database"):
        SingleThreadedRunner(one_edge, env=env)


def test_runner_wait_times_out_naming_what_it_waited_for():
    with MultiThreadedRunner(one_edge) as runner:
        copier = runner.get(Copier)
        with copier.processing_lock:
            runner.get(Items).create("a")
            with pytest.raises(TimeoutError, match="Copier to process notification 1"):
                runner.wait(timeout=0.2)
        runner.wait()


def test_runners_need_a_system():
    with pytest.raises(TypeError, match="Runners run a System"):
        SingleThreadedRunner([[Items, Copier]])  # type: ignore[arg-type]


def test_multithreaded_runner_reports_an_error_once_stopped_and_starts_afresh():
    runner = MultiThreadedRunner(one_edge)
    runner.start()
    runner.get(Items).create("boom")
    with pytest.raises(EventProcessingError):
        runner.wait(timeout=5)
    with pytest.raises(EventProcessingError):
        runner.stop()
    runner.start()  # memory: a new system, without the error
    runner.get(Items).create("a")
    runner.wait()
    runner.stop()
