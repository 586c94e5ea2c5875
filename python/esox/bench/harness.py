"""Timing: interleaved repeats of twin workloads, medians, progress, profiles.

Every workload has up to three sides, run in the same process: ``esox``,
``eventsourcing`` (its 9.x twin) and ``limit`` (the practical limit: the same
work done by the fastest plain tool, e.g. ``sqlite3.executemany``). A repeat
runs each side once, in an order that rotates from repeat to repeat, so slow
drifts of a busy machine hit every side alike. The garbage collector runs
once before a workload's repeats and is off during each timed block (as
pytest-benchmark's ``--benchmark-disable-gc`` does): a collection would land
in whichever block happened to cross its threshold. That is conservative for
esox, which allocates less: the other side's collections go untimed. What is
left after that collection (the set-up's events, databases, applications) is
frozen until the repeats end (``settled``), so that a collection that does run
in a block (pytest-benchmark runs ``benches/`` with the collector on)
traverses what the block made, not the set-up: the same for every side.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SIDES",
    "Measurement",
    "Twin",
    "Workload",
    "close_all",
    "measure",
    "profile_side",
    "settled",
    "summarise",
    "timed",
]

SIDES = ("esox", "eventsourcing", "limit")

# Below this scale each side runs once untimed before the repeats. At and
# above it a warm-up would cost as much as a repeat, while one-off costs
# (imports, caches, the first page reads) are a small share of the block and
# a slow first repeat is outvoted by the median.
WARM_UP_BELOW = 10_000


def _nothing() -> None:
    pass


@dataclass
class Twin:
    """One side of a workload.

    ``prepare`` does the untimed set-up of one repeat (fresh tables, new
    events) and returns the block to time; ``close`` releases what the twin
    holds (connections, files).
    """

    prepare: Callable[[], Callable[[], object]]
    close: Callable[[], None] = _nothing


@dataclass
class Workload:
    """A piece of work measured on each side, at one scale.

    ``units`` are counted per timed block (events, or operations when
    ``unit`` is "op"); ``build`` makes the twins, once, before the repeats.
    ``side_repeats`` gives a side fewer repeats than ``repeats`` (at the
    largest scales eventsourcing's blocks take seconds: one is an average
    over many events already).
    """

    family: str
    variant: str
    scale: int
    units: int
    build: Callable[[], Mapping[str, Twin]]
    repeats: int
    unit: str = "event"
    persistence: str = ""
    limit_name: str = ""
    note: str = ""
    side_repeats: dict[str, int] = field(default_factory=dict)

    def repeats_of(self, side: str) -> int:
        """How many timed blocks ``side`` runs."""
        return self.side_repeats.get(side, self.repeats)

    @property
    def name(self) -> str:
        """The family and the variant, as the report shows them."""
        return f"{self.family}, {self.variant}" if self.variant else self.family

    @property
    def key(self) -> str:
        """A unique, stable name of this workload at this scale."""
        return f"{self.name} @ {self.scale}"


@dataclass
class Measurement:
    """The timed blocks of one workload, nanoseconds per side."""

    workload: Workload
    times_ns: dict[str, list[int]] = field(default_factory=dict)
    error: str = ""

    def median_ns(self, side: str) -> float | None:
        """The median time of the side's blocks, or None if it did not run."""
        times = self.times_ns.get(side)
        return float(statistics.median(times)) if times else None

    def rate(self, side: str) -> float | None:
        """Units per second at the median."""
        median = self.median_ns(side)
        return self.workload.units * 1e9 / median if median else None

    def per_unit_ns(self, side: str) -> float | None:
        """Nanoseconds per unit (event or operation) at the median."""
        median = self.median_ns(side)
        return median / self.workload.units if median else None

    def ratio(self, other: str) -> float | None:
        """esox's speed over ``other``'s: other's median time / esox's."""
        esox, theirs = self.median_ns("esox"), self.median_ns(other)
        return theirs / esox if esox and theirs else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the workload and its numbers."""
        w = self.workload
        sides = {}
        for side, times in self.times_ns.items():
            sides[side] = {
                "times_ns": times,
                "median_ns": self.median_ns(side),
                "rate": self.rate(side),
                "per_unit_ns": self.per_unit_ns(side),
            }
        return {
            "key": w.key,
            "name": w.name,
            "family": w.family,
            "variant": w.variant,
            "persistence": w.persistence,
            "scale": w.scale,
            "units": w.units,
            "unit": w.unit,
            "repeats": {side: w.repeats_of(side) for side in self.times_ns},
            "limit_name": w.limit_name,
            "note": w.note,
            "sides": sides,
            "ratio_eventsourcing": self.ratio("eventsourcing"),
            "ratio_limit": self.ratio("limit"),
            "error": self.error,
        }


def timed(block: Callable[[], object]) -> int:
    """Nanoseconds ``block`` takes, with the cycle collector off during it.

    No collection is forced before the block: a full collection walks the
    whole heap and leaves the caches cold, which cost a 1,000-event decode
    30% of esox's time (349 against 263 ns an event) and 2% of
    eventsourcing's. ``measure`` collects once, before a workload's repeats;
    between blocks the collector runs when its thresholds say, untimed.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        result = block()
        elapsed = time.perf_counter_ns() - start
    finally:
        if was_enabled:
            gc.enable()
    del result  # freed outside the timed block, for every side alike
    return elapsed


@contextmanager
def built(workload: Workload) -> Iterator[Mapping[str, Twin]]:
    """The workload's twins, closed afterwards whatever happens."""
    twins = workload.build()
    try:
        yield twins
    finally:
        close_all(twins.values())


@contextmanager
def settled() -> Iterator[None]:
    """Collect, then freeze what is left (``gc.freeze``) until the end: the
    collector's full collections skip the frozen objects."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def closed_on_error(twins: Mapping[str, Twin]) -> Iterator[None]:
    """Close the twins built so far if building the rest raises."""
    try:
        yield
    except BaseException:
        with suppress(BaseException):
            close_all(twins.values())
        raise


def close_all(twins: Iterable[Twin]) -> None:
    """Close every twin, even when one fails to; then raise the first error."""
    errors: list[BaseException] = []
    for twin in twins:
        try:
            twin.close()
        except BaseException as e:  # kept, raised below
            errors.append(e)
    if errors:
        raise errors[0]


def measure(workload: Workload) -> Measurement:
    """Run the workload's repeats, sides interleaved; errors are recorded."""
    measurement = Measurement(workload)
    try:
        with built(workload) as twins, settled():
            sides = [side for side in SIDES if side in twins]
            if workload.scale < WARM_UP_BELOW:
                for side in sides:
                    twins[side].prepare()()
            for side in sides:
                measurement.times_ns[side] = []
            for repeat in range(workload.repeats):
                shift = repeat % len(sides)
                for side in sides[shift:] + sides[:shift]:
                    if repeat >= workload.repeats_of(side):
                        continue
                    block = twins[side].prepare()
                    measurement.times_ns[side].append(timed(block))
    except Exception as e:  # a broken side must not sink the whole run
        measurement.error = f"{type(e).__name__}: {e}"
    return measurement


def summarise(profiler: cProfile.Profile, top: int = 12) -> str:
    """The profile's total and its ``top`` functions by own time, as text."""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    total = [line.strip() for line in lines if "function calls" in line]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), len(lines))
    return "\n".join(total + [line.rstrip() for line in lines[start:] if line.strip()])


def profile_side(workload: Workload, side: str = "esox", top: int = 12) -> str:
    """cProfile of one timed block of one side: the top functions by own time."""
    with built(workload) as twins:
        block = twins[side].prepare()
        profiler = cProfile.Profile()
        profiler.runcall(block)
    return summarise(profiler, top)
