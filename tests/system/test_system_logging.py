"""Runners, followers, catch-up and ``esox run`` log through ``logging``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esox.system import MultiThreadedRunner, SingleThreadedRunner
from tests.system_apps import Copier, Items, one_edge

LEADER_EVENTS = 250  # more than a follower's batch (pull_section_size, 100)


def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "esox.sqlite",
        "ITEMS_SQLITE_DBNAME": str(tmp_path / "items.db"),
        "COPIER_SQLITE_DBNAME": str(tmp_path / "copier.db"),
    }


def record_items(env: dict[str, str], count: int) -> None:
    with Items(env=env) as items:
        items.create_many([f"item {i}" for i in range(count)])


def messages(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and r.levelno == level
    ]


def test_catch_up_logs_its_progress_at_info_and_each_batch_at_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    env = sqlite_env(tmp_path)
    record_items(env, LEADER_EVENTS)
    caplog.set_level(logging.DEBUG, logger="esox")
    with SingleThreadedRunner(one_edge, env=env) as runner:
        assert runner.get(Copier).position("Items") == LEADER_EVENTS
        runner.get(Items).create("one more")  # processed from the prompt
    assert messages(caplog, "esox.system.runners", logging.INFO) == [
        "SingleThreadedRunner starting Items, Copier (followers: Copier)"
    ]
    info = messages(caplog, "esox.system.follower", logging.INFO)
    assert len(info) == 1
    assert info[0].startswith(
        f"Copier caught up with Items: notifications 1 to {LEADER_EVENTS} "
        f"({LEADER_EVENTS} read, {LEADER_EVENTS} processed) in "
    )
    batches = [
        m
        for m in messages(caplog, "esox.system.follower", logging.DEBUG)
        if "processed notifications" in m
    ]
    assert batches == [
        "Copier processed notifications 1 to 100 of Items (100 of its topics)",
        "Copier processed notifications 101 to 200 of Items (100 of its topics)",
        "Copier processed notifications 201 to 250 of Items (50 of its topics)",
    ]


def test_a_small_pull_is_not_logged_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    env = sqlite_env(tmp_path)
    record_items(env, 3)
    caplog.set_level(logging.INFO, logger="esox")
    with SingleThreadedRunner(one_edge, env=env):
        pass
    assert messages(caplog, "esox.system.follower", logging.INFO) == []


def test_a_failing_follower_thread_logs_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    class Failing(Copier):
        def policy(self, domain_event: object, processing_event: object) -> None:
            raise ValueError("boom")

    env = sqlite_env(tmp_path)
    env["FAILING_SQLITE_DBNAME"] = str(tmp_path / "failing.db")
    from esox.system import System

    caplog.set_level(logging.INFO, logger="esox")
    runner = MultiThreadedRunner(System(pipes=[[Items, Failing]]), env=env)
    runner.start()
    try:
        runner.get(Items).create("x")
        # It stops the runner and raises the follower's error.
        with pytest.raises(Exception, match="boom"):
            runner.watch_for_errors(timeout=10)
    finally:
        if runner.is_started:
            runner.stop()
    errors = messages(caplog, "esox.system.runners", logging.ERROR)
    assert len(errors) == 1
    assert errors[0].startswith("Follower thread of Failing stopped: ")
    assert "ValueError: boom" in errors[0]


def test_esox_run_takes_log_level_and_logs_the_catch_up(tmp_path: Path):
    env = sqlite_env(tmp_path)
    record_items(env, LEADER_EVENTS)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "esox", "run", "tests.system_apps:one_edge"),
            *("--app", "Copier", "--log-level", "debug", "--poll-interval", "0.2"),
        ],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while not any("caught up with Items" in line for line in lines):
            assert time.monotonic() < deadline, lines
            line = process.stderr.readline()
            assert line, lines  # EOF: the process ended
            lines.append(line)
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(lines)
    assert "INFO esox.system.multiprocess: Copier is following Items" in text
    assert "DEBUG esox.system.follower: Copier processed notifications 1 to 100" in text
    assert (
        f"INFO esox.system.follower: Copier caught up with Items: notifications 1 "
        f"to {LEADER_EVENTS}" in text
    )
    assert process.returncode == 0, rest
    quiet = subprocess.run(
        [
            *(sys.executable, "-m", "esox", "run", "tests.system_apps:one_edge"),
            *("--app", "Copier", "--log-level", "loud"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert quiet.returncode == 2
    assert "--log-level: invalid choice: 'loud'" in quiet.stderr
