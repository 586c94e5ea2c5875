"""The notification log over HTTP against the same log read locally.

Run: pytest benches/bench_remote_log.py --benchmark-only
100,000 notifications in an SQLite file, read by a NotificationLogReader in
selections of 1,000: ``*_esox`` through RemoteNotificationLog from ``esox serve``
(a separate process, over loopback HTTP), ``*_local`` straight from the file.
Notifications per second are in each benchmark's ``extra_info`` and printed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from esox.application import LocalNotificationLog, NotificationLog
from esox.examples.dogschool import Dog, DogSchool
from esox.interface import RemoteNotificationLog
from esox.system import NotificationLogReader

N_NOTIFICATIONS = 100_000
BATCH = 1_000
GROUP = f"read {N_NOTIFICATIONS:,} notifications (batches of {BATCH:,})"


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An SQLite file holding 1,000 dogs' 100 events each, inserted in big batches."""
    path = tmp_path_factory.mktemp("remote-log") / "dogs.sqlite"
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": str(path)}
    with DogSchool(env=env) as school:
        events = []
        for i in range(N_NOTIFICATIONS // 100):
            dog = Dog(f"dog {i}")
            for t in range(99):
                dog.add_trick(f"trick {t}")
            events.extend(dog.collect_events())
        stored = school.mapper.to_stored_events(events)
        for i in range(0, len(stored), 10_000):
            school.recorder.insert_events(stored[i : i + 10_000])
        assert school.recorder.max_notification_id() == N_NOTIFICATIONS
    return env


@pytest.fixture(scope="module")
def server_url(sqlite_env: dict[str, str]) -> Iterator[str]:
    """``esox serve`` of a DogSchool on that file, in its own process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "esox", "serve"),
            "esox.examples.dogschool:DogSchool",
            *("--port", str(port), "--log-level", "warning"),
        ],
        env={**os.environ, **sqlite_env},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "esox serve exited"
            try:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"esox serve not up on {url}"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def read_all(log: NotificationLog) -> int:
    reader = NotificationLogReader(log, section_size=BATCH)
    return sum(len(batch) for batch in reader.select(start=1))


def run(benchmark: Any, log: NotificationLog, label: str) -> None:
    count = benchmark.pedantic(read_all, args=(log,), rounds=5, warmup_rounds=1)
    assert count == N_NOTIFICATIONS
    if benchmark.stats is None:  # --benchmark-disable: ran once, unmeasured
        return
    rate = N_NOTIFICATIONS / benchmark.stats.stats.mean
    benchmark.extra_info["notifications_per_second"] = round(rate)
    print(f"\n{label}: {rate:,.0f} notifications/s")


@pytest.mark.benchmark(group=GROUP)
def test_read_notifications_esox(benchmark: Any, server_url: str) -> None:
    with RemoteNotificationLog(server_url) as log:
        run(benchmark, log, "remote (HTTP)")


@pytest.mark.benchmark(group=GROUP)
def test_read_notifications_local(benchmark: Any, sqlite_env: dict[str, str]) -> None:
    with DogSchool(env=sqlite_env) as school:
        run(benchmark, LocalNotificationLog(school.recorder, BATCH), "local (SQLite)")
