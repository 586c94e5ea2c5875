"""What a run measures: scales, repeats, persistence kinds, and where files go."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "FULL_SCALES",
    "KINDS",
    "POSTGRES_ENV",
    "QUICK_SCALES",
    "Plan",
    "eventsourcing_installed",
    "postgres_conninfo",
    "postgres_unreachable",
]

FULL_SCALES = (1_000, 10_000, 100_000)
QUICK_SCALES = (1_000, 10_000)
KINDS = ("memory", "sqlite", "postgres")

# PostgreSQL connection, from the same variables esox.postgres reads
# (ESOX_BENCH_POSTGRES_* first, so a benchmark database can be named apart).
POSTGRES_ENV = {
    key: os.environ.get(f"ESOX_BENCH_{key}") or os.environ.get(key) or default
    for key, default in (
        ("POSTGRES_DBNAME", "test"),
        ("POSTGRES_HOST", "127.0.0.1"),
        ("POSTGRES_PORT", "5432"),
        ("POSTGRES_USER", "postgres"),
        ("POSTGRES_PASSWORD", ""),
    )
}


def eventsourcing_installed() -> bool:
    """Whether eventsourcing (9.x) can be imported."""
    return importlib.util.find_spec("eventsourcing") is not None


def postgres_conninfo() -> str:
    """A libpq connection string for ``POSTGRES_ENV``."""
    env = POSTGRES_ENV
    return (
        f"dbname={env['POSTGRES_DBNAME']} host={env['POSTGRES_HOST']} "
        f"port={env['POSTGRES_PORT']} user={env['POSTGRES_USER']} "
        f"password={env['POSTGRES_PASSWORD']} connect_timeout=5"
    )


def postgres_unreachable() -> str:
    """Why PostgreSQL cannot be used ("" when it can)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'esox[postgres]')"
    try:
        psycopg.connect(postgres_conninfo()).close()
    except psycopg.Error as e:
        return f"PostgreSQL is unreachable: {str(e).strip().splitlines()[0]}"
    return ""


@dataclass
class Plan:
    """The sizes of a run. ``scales`` are events per workload.

    The slowest workloads (AES mapping, application save, follower
    processing: eventsourcing takes 0.1 to 0.3 ms an event there) stop at
    ``slow_max_scale``; at the largest scale eventsourcing's side runs once.
    """

    quick: bool = False
    scales: tuple[int, ...] = FULL_SCALES
    kinds: tuple[str, ...] = KINDS
    eventsourcing: bool = True
    repeats: int = 5
    # At most this many transactions in one timed block of inserts: a batch
    # of one event at 100,000 events would otherwise be 100,000 fsyncs.
    max_transactions: int = 200
    slow_max_scale: int = 10_000
    # The share of max_transactions on PostgreSQL, where every commit is a
    # round trip and a server-side fsync.
    postgres_transactions_share: float = 0.5
    # Commands per library in the latency measurement (fewer when every
    # commit waits for the disk).
    latency_commands: int = 5_000
    latency_commands_full_sync: int = 1_000
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    @classmethod
    def create(
        cls,
        *,
        quick: bool = False,
        scales: tuple[int, ...] | None = None,
        kinds: tuple[str, ...] = KINDS,
        eventsourcing: bool = True,
        workdir: Path | None = None,
        repeats: int | None = None,
    ) -> Plan:
        """The plan of a full or a ``quick`` run (``scales`` and ``repeats``
        override)."""
        plan = cls(quick=quick, kinds=kinds, eventsourcing=eventsourcing)
        if quick:
            plan.scales = QUICK_SCALES
            plan.repeats = 3
            plan.max_transactions = 30
            plan.slow_max_scale = 1_000
            plan.latency_commands = 300
            plan.latency_commands_full_sync = 100
        if scales:
            plan.scales = tuple(sorted(scales))
            smallest = min(scales)
            plan.max_transactions = min(plan.max_transactions, max(smallest // 10, 5))
            plan.latency_commands = min(plan.latency_commands, smallest)
            plan.latency_commands_full_sync = min(
                plan.latency_commands_full_sync, max(smallest // 5, 20)
            )
        if workdir is not None:
            plan.workdir = workdir
        if repeats is not None:
            plan.repeats = repeats
        return plan

    def transactions(self, store: str) -> int:
        """At most this many transactions in one timed block of inserts."""
        if store == "postgres":
            return max(int(self.max_transactions * self.postgres_transactions_share), 1)
        return self.max_transactions

    @property
    def chart_scale(self) -> int:
        """The scale the chart shows (10,000, where eventsourcing runs every
        repeat), or the largest of the run."""
        return 10_000 if 10_000 in self.scales else max(self.scales)

    def repeats_at(self, scale: int) -> int:
        """Timed repeats per side at ``scale``: fewer for the biggest blocks."""
        return min(3, self.repeats) if scale >= 100_000 else self.repeats

    def side_repeats_at(
        self, scale: int, scales: tuple[int, ...] | None = None
    ) -> dict[str, int]:
        """Sides with fewer repeats at ``scale``: eventsourcing, at the largest
        of a workload's ``scales`` when it has several (its blocks take
        seconds there)."""
        scales = scales or self.scales
        if len(scales) > 1 and scale == max(scales):
            return {"eventsourcing": 1}
        return {}

    def slow_scales(self) -> tuple[int, ...]:
        """The scales of the slowest workloads (up to ``slow_max_scale``)."""
        scales = tuple(s for s in self.scales if s <= self.slow_max_scale)
        return scales or (min(self.scales),)

    @property
    def repository_scale(self) -> int:
        """The aggregate size of the repository goal (10,000 events)."""
        return 10_000 if 10_000 in self.scales else max(self.scales)

    @property
    def snapshot_scale(self) -> int:
        """The aggregate size of the snapshot and cache variants."""
        return min(self.repository_scale, max(self.slow_scales()))
