"""Followers in their own OS processes: the multi-process runner and ``esox run``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from esox.examples import bankaccounts_system
from esox.system import (
    EventProcessingError,
    MultiProcessRunner,
    MultiThreadedRunner,
    SingleThreadedRunner,
    SystemDefinitionError,
)
from tests.persistence_envs import persistence_env
from tests.system.test_runners import system_env
from tests.system_apps import Auditor, Copier, Items, one_edge, two_edges

ROOT = Path(__file__).resolve().parents[2]
ESOX = str(Path(sys.executable).with_name("esox"))


def process_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a child process that can import the tests package."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return os.environ | env | {"PYTHONPATH": path}


@contextmanager
def esox_run(args: list[str], env: dict[str, str], **popen: Any) -> Iterator[list[str]]:
    """``esox run args`` in a process, ended with SIGTERM on leaving, when it
    must exit with 0; what it wrote to stderr is then in the list yielded."""
    stderr: list[str] = []
    process = subprocess.Popen(
        [ESOX, "run", *args], env=env, stderr=subprocess.PIPE, text=True, **popen
    )
    try:
        yield stderr
    finally:
        process.send_signal(signal.SIGTERM)
        stderr.append(process.communicate(timeout=20)[1])
    assert process.returncode == 0, stderr[0]


def test_same_system_ends_in_identical_state_under_every_runner(tmp_path: Path):
    system = bankaccounts_system.system
    summaries = []
    with SingleThreadedRunner(system) as runner:
        summaries.append(
            bankaccounts_system.summarise(
                runner, bankaccounts_system.run_commands(runner)
            )
        )
    with (
        system_env("sqlite", tmp_path, system) as env,
        MultiThreadedRunner(system, env=env) as runner,
    ):
        accounts = bankaccounts_system.run_commands(runner)
        runner.wait()
        summaries.append(bankaccounts_system.summarise(runner, accounts))
    with (
        persistence_env("postgres", tmp_path, "bank") as env,
        MultiProcessRunner(system, env=env, poll_interval=1.0) as runner,
    ):
        assert set(runner.processes) == {"Ledger", "Notifications"}
        accounts = bankaccounts_system.run_commands(runner)
        runner.wait()
        summaries.append(bankaccounts_system.summarise(runner, accounts))
    assert summaries[0] == summaries[1] == summaries[2]
    assert "Bob    balance    5.00  ledger: 3 entries" in summaries[0]


def test_multiprocess_runner_catches_up_and_follows_a_pipe(tmp_path: Path):
    with persistence_env("postgres", tmp_path, "pipe") as env:
        with Items(env) as items:
            items.create_many(["a", "b"])
        with MultiProcessRunner(two_edges, env=env, poll_interval=1.0) as runner:
            runner.wait()
            runner.get(Items).create("c")
            runner.wait()
            assert [r[2] for r in runner.get(Auditor).records()] == ["a", "b", "c"]
            pids = {p.pid for p in runner.processes.values()}
            assert os.getpid() not in pids and len(pids) == 2


def test_multiprocess_runner_on_sqlite_files(tmp_path: Path):
    with (
        system_env("sqlite", tmp_path, two_edges) as env,
        MultiProcessRunner(two_edges, env=env, poll_interval=1.0) as runner,
    ):
        runner.get(Items).create_many(["a", "b", "c"])
        runner.wait()
        assert [r[1] for r in runner.get(Auditor).records()] == [1, 2, 3]


def test_follower_killed_mid_stream_processes_every_event_exactly_once(
    tmp_path: Path,
):
    total = 600
    started = time.monotonic()
    with (
        persistence_env("postgres", tmp_path, "crash") as env,
        MultiProcessRunner(two_edges, env=env, poll_interval=1.0) as runner,
    ):
        items, copier = runner.get(Items), runner.get(Copier)
        done = threading.Event()

        def produce() -> None:
            for i in range(0, total, 3):
                items.create_many([f"item {i + j}" for j in range(3)])
                time.sleep(0.002)
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        # Kill the copier while it is busy: part-way through the stream.
        copier.recorder.wait("Items", total // 5, timeout=30)
        victim = runner.processes["Copier"]
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
        victim.join(10)
        assert victim.exitcode == -signal.SIGKILL
        killed_at = copier.recorder.max_tracking_id("Items")
        assert killed_at is not None and killed_at < total
        with pytest.raises(EventProcessingError, match="exited unexpectedly"):
            runner.wait(timeout=1)
        runner.restart("Copier")
        producer.join()
        assert done.is_set()
        runner.wait(timeout=30)

        copied = copier.records()
        assert [n for _, n, _ in copied] == list(range(1, total + 1))
        assert [label for _, _, label in copied] == [f"item {i}" for i in range(total)]
        audited = runner.get(Auditor).records()
        assert [n for _, n, _ in audited] == list(range(1, total + 1))
        assert copier.recorder.max_tracking_id("Items") == total
    assert time.monotonic() - started < 60


def test_multiprocess_runner_reports_a_policy_error_with_its_traceback(tmp_path: Path):
    with persistence_env("postgres", tmp_path, "error") as env:
        runner = MultiProcessRunner(one_edge, env=env, poll_interval=1.0)
        runner.start()
        runner.get(Items).create_many(["a", "boom"])
        with pytest.raises(EventProcessingError) as info:
            runner.wait(timeout=20)
        message = str(info.value)
        assert "The process of Copier failed" in message
        assert "policy refused 'boom'" in message and "Traceback" in message
        with pytest.raises(EventProcessingError, match="Copier failed"):
            runner.get(Items)
        with pytest.raises(EventProcessingError, match="Copier failed"):
            runner.stop()
        assert not runner.processes and not runner.is_started


def test_multiprocess_runner_refuses_databases_other_processes_cannot_read(
    tmp_path: Path,
):
    with pytest.raises(SystemDefinitionError, match="keeps its events in memory"):
        MultiProcessRunner(one_edge).start()
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": ":memory:"}
    with pytest.raises(SystemDefinitionError, match="keeps its events in memory"):
        MultiProcessRunner(one_edge, env=env).start()


def test_esox_run_follows_postgres_upstreams_as_a_standalone_process(tmp_path: Path):
    with persistence_env("postgres", tmp_path, "cli") as env:
        args = ["tests.system_apps:two_edges", "--app", "Copier"]
        args += ["--poll-interval", "1"]
        with Items(env) as items, Copier(env) as copier:
            items.create("before")
            with esox_run(args, process_env(env), cwd=tmp_path) as stderr:
                copier.recorder.wait("Items", 1, timeout=30)
                items.create("after")
                copier.recorder.wait("Items", 2, timeout=10)
                assert [r[2] for r in copier.records()] == ["before", "after"]
        assert "Copier is following Items" in stderr[0]


def test_esox_run_follows_an_upstream_over_http(tmp_path: Path):
    from esox.interface import ServerThread, create_app

    env = {"PERSISTENCE_MODULE": "esox.sqlite"} | {
        f"{n.upper()}_SQLITE_DBNAME": str(tmp_path / f"{n}.db")
        for n in ("items", "copier")
    }
    args = ["tests.system_apps:one_edge", "--app", "Copier"]
    with Items(env) as items, ServerThread(create_app(items)) as server:
        args += ["--upstream", f"Items={server.url}", "--poll-interval", "0.2"]
        items.create("a")
        child_env = process_env(env) | {
            "ITEMS_SQLITE_DBNAME": str(tmp_path / "elsewhere")
        }
        with esox_run(args, child_env), Copier(env) as copier:
            copier.recorder.wait("Items", 1, timeout=30)
            items.create("b")
            copier.recorder.wait("Items", 2, timeout=10)
            assert [r[2] for r in copier.records()] == ["a", "b"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tests.system_apps:two_edges", "--app", "Items"], "follows nothing"),
        (["tests.system_apps:two_edges", "--app", "Nope"], "no application 'Nope'"),
        (["tests.system_apps:Items", "--app", "Copier"], "is not a System"),
        (["tests.nowhere:system", "--app", "Copier"], "nowhere"),
        (
            ["tests.system_apps:two_edges", "--app", "Auditor", "--upstream", "x"],
            "expected NAME=URL",
        ),
    ],
)
def test_esox_run_explains_what_is_wrong(args: list[str], message: str, capsys):
    from esox.cli import main

    assert main(["run", *args]) == 2
    assert message in capsys.readouterr().err
