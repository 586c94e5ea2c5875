"""Latency of one command, for applications that embed esox: get an aggregate,
trigger one event, save it. Percentiles p50, p99 and p99.9 per library.

Each command works on its own dog (registered with ``EVENTS_PER_DOG`` events
beforehand), so every command does the same work. The libraries take turns
in chunks of ``CHUNK`` commands, the order rotating. The collector runs
before each chunk and stays on during it: its pauses are part of the tail
latency an application sees. On SQLite, the floor is the same command's
database work done with sqlite3 (select the aggregate's rows, insert one row,
commit); a library's overhead is its latency less the floor.
"""

from __future__ import annotations

import cProfile
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from esox.bench.harness import summarise
from esox.bench.plan import Plan
from esox.bench.workloads.application import dog_class, libraries, make_app
from esox.bench.workloads.storage import (
    SQLITE_INSERT,
    TOPIC,
    Fresh,
    Kind,
    kinds,
    new_database,
    rows,
    sqlite_connect,
    sqlite_params,
)

__all__ = [
    "CHUNK",
    "EVENTS_PER_DOG",
    "QUANTILES",
    "LatencyResult",
    "app_command",
    "latency_kinds",
    "measure",
    "profile",
    "sqlite_floor",
]

CHUNK = 100
EVENTS_PER_DOG = 10
QUANTILES = {"p50": 0.5, "p99": 0.99, "p99.9": 0.999}

Command = Callable[[int], None]


@dataclass
class LatencyResult:
    """Command latencies (nanoseconds) per side on one kind of persistence."""

    persistence: str
    commands: int
    samples_ns: dict[str, list[int]] = field(default_factory=dict)
    error: str = ""

    def percentile(self, side: str, name: str) -> float | None:
        """The ``name`` ("p50", "p99", "p99.9") latency of ``side``."""
        samples = sorted(self.samples_ns.get(side, []))
        if not samples:
            return None
        rank = QUANTILES[name] * (len(samples) - 1)
        low = int(rank)
        high = min(low + 1, len(samples) - 1)
        return samples[low] + (samples[high] - samples[low]) * (rank - low)

    def overhead(self, side: str, name: str) -> float | None:
        """The side's latency less the floor's (the floor is 0 in memory)."""
        value = self.percentile(side, name)
        if value is None:
            return None
        floor = self.percentile("limit", name) or 0.0
        return value - floor

    def ratio(self, name: str) -> float | None:
        """eventsourcing's latency over esox's, at ``name``."""
        esox, es = self.percentile("esox", name), self.percentile("eventsourcing", name)
        return es / esox if esox and es else None

    def overhead_ratio(self, name: str = "p50") -> float | None:
        """eventsourcing's overhead over esox's (above the floor), at ``name``."""
        esox, es = self.overhead("esox", name), self.overhead("eventsourcing", name)
        return es / esox if esox and es and esox > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record: percentiles and overheads, not the samples."""
        sides = {}
        for side, samples in self.samples_ns.items():
            sides[side] = {
                "count": len(samples),
                "mean_ns": statistics.fmean(samples) if samples else None,
                **{f"{q}_ns": self.percentile(side, q) for q in QUANTILES},
            }
        return {
            "persistence": self.persistence,
            "commands": self.commands,
            "sides": sides,
            "ratio": {q: self.ratio(q) for q in QUANTILES},
            "overhead_ratio": {q: self.overhead_ratio(q) for q in QUANTILES},
            "error": self.error,
        }


def latency_kinds(plan: Plan) -> list[Kind]:
    """Memory and SQLite (FULL and NORMAL), as far as the plan has them."""
    return [kind for kind in kinds(plan) if kind.store in ("memory", "sqlite")]


def commands_for(plan: Plan, kind: Kind) -> int:
    """Commands per side: fewer where every commit waits for the disk."""
    if kind.synchronous == "FULL":
        return plan.latency_commands_full_sync
    return plan.latency_commands


def app_command(library: str, kind: Kind, plan: Plan, fresh: Fresh, n: int) -> Command:
    """A command on ``n`` dogs of ``library``'s application (set up here):
    ``command(i)`` gets dog ``i``, adds a trick and saves it."""
    app = make_app(library, kind, plan, fresh)
    dog_cls = dog_class(library)
    ids = []
    for start in range(0, n, 100):
        dogs = [dog_cls(f"dog {i}") for i in range(start, min(start + 100, n))]
        for dog in dogs:
            for trick in range(EVENTS_PER_DOG - 1):
                dog.add_trick(f"trick {trick}")
        app.save(*dogs)
        ids += [dog.id for dog in dogs]
    get, save = app.repository.get, app.save

    def command(i: int) -> None:
        dog = get(ids[i])
        dog.add_trick("sit")
        save(dog)

    return command


def sqlite_floor(kind: Kind, plan: Plan, fresh: Fresh, n: int) -> Command:
    """The same command's database work with sqlite3: select dog ``i``'s rows,
    insert one row, commit."""
    conn = sqlite_connect(new_database(kind, plan, fresh), kind.synchronous)
    fresh.on_release(conn.close)
    every = rows(n * EVENTS_PER_DOG, per_aggregate=EVENTS_PER_DOG)
    conn.execute("BEGIN")
    conn.executemany(SQLITE_INSERT, sqlite_params(every))
    conn.execute("COMMIT")
    ids = [row[0].hex for row in every[::EVENTS_PER_DOG]]
    select = (
        "SELECT originator_id, originator_version, topic, state FROM stored_events "
        "WHERE originator_id = ? ORDER BY originator_version"
    )
    state = every[0][3]
    execute = conn.execute

    def command(i: int) -> None:
        execute(select, (ids[i],)).fetchall()
        execute("BEGIN IMMEDIATE")
        execute(SQLITE_INSERT, (ids[i], EVENTS_PER_DOG + 1, TOPIC, state))
        execute("COMMIT")

    return command


def measure(plan: Plan, kind: Kind) -> LatencyResult:
    """Time ``commands_for(plan, kind)`` commands per side, interleaved."""
    n = commands_for(plan, kind)
    result = LatencyResult(kind.name, n)
    fresh = Fresh()
    try:
        commands = {
            library: app_command(library, kind, plan, fresh, n)
            for library in libraries(plan)
        }
        if kind.store == "sqlite":
            commands["limit"] = sqlite_floor(kind, plan, fresh, n)
        sides = list(commands)
        for side in sides:  # warm up on the first few
            commands[side](0)
        samples: dict[str, list[int]] = {side: [] for side in sides}
        for chunk, start in enumerate(range(1, n, CHUNK)):
            shift = chunk % len(sides)
            for side in sides[shift:] + sides[:shift]:
                command, times = commands[side], samples[side]
                gc.collect()
                for i in range(start, min(start + CHUNK, n)):
                    begin = time.perf_counter_ns()
                    command(i)
                    times.append(time.perf_counter_ns() - begin)
        result.samples_ns = samples
    except Exception as e:
        result.error = f"{type(e).__name__}: {e}"
    finally:
        fresh.release()
    return result


def profile(plan: Plan, kind: Kind, commands: int = 500, top: int = 12) -> str:
    """cProfile of ``commands`` esox commands: the top functions by own time."""
    fresh = Fresh()
    try:
        command = app_command("esox", kind, plan, fresh, commands)
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(commands):
            command(i)
        profiler.disable()
    finally:
        fresh.release()
    return summarise(profiler, top)
