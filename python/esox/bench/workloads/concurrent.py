"""Concurrent writers: four OS processes, or four threads, inserting into one
database at once (family "concurrent insert").

Each writer inserts its share of the events in batches of ``BATCH`` (one new
aggregate per batch, as commands saving a few events do). Process writers
are started once per twin and kept: before each repeat they attach to the
repeat's fresh database and build their stored events (untimed); the timed
block tells them all to go and waits until the last one is done. After a
block, the database must hold every event exactly once with notification
ids ``1..N`` and no gap: checked before the next repeat, untimed; a failure
fails the workload. (That a reader never sees id n+1 while n is in flight
is proven by the recorder tests, which run a reader during the writes.)
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from esox.bench.harness import Twin, Workload
from esox.bench.plan import Plan
from esox.bench.workloads.storage import (
    Fresh,
    Kind,
    attach_recorder,
    batches,
    es_events,
    esox_events,
    kinds,
    new_database,
    rows,
)

__all__ = ["BATCH", "WRITERS", "Writers", "check_complete", "workloads"]

WRITERS = 4
BATCH = 10
# Eventsourcing's PostgreSQL writers take a table lock per batch; above this
# many events a block would take tens of seconds without telling more.
MAX_SCALE = 10_000
# How long a writer may take to answer before the workload fails.
REPLY_TIMEOUT = 600


def workloads(plan: Plan) -> list[Workload]:
    """The concurrent-insert workloads of the plan: PostgreSQL (processes and
    threads) and SQLite FULL (processes)."""
    found: list[Workload] = []
    for kind in kinds(plan, sync_modes=("FULL",)):
        if kind.store == "memory":
            continue
        how = ("processes", "threads") if kind.store == "postgres" else ("processes",)
        for writers in how:
            for scale in plan.scales:
                if scale > MAX_SCALE or scale < WRITERS * BATCH:
                    continue
                found.append(
                    Workload(
                        family="concurrent insert",
                        variant=f"{kind.name}, {WRITERS} writer {writers}",
                        scale=scale,
                        units=scale,
                        build=partial(build, plan, kind, writers, scale),
                        repeats=plan.repeats_at(scale),
                        persistence=kind.name,
                        note=f"batches of {BATCH}, one new aggregate per batch",
                    )
                )
    return found


def build(plan: Plan, kind: Kind, writers: str, scale: int) -> dict[str, Twin]:
    """A twin per library: ``WRITERS`` processes or threads inserting ``scale``
    events between them."""
    libraries = ["esox", "eventsourcing"] if plan.eventsourcing else ["esox"]
    make = _process_twin if writers == "processes" else _thread_twin
    return {library: make(plan, kind, library, scale) for library in libraries}


def stored_batches(library: str, share: int) -> list[list[Any]]:
    """One writer's stored events: ``share`` new rows in batches of ``BATCH``."""
    make = esox_events if library == "esox" else es_events
    return [make(batch) for batch in batches(rows(share, per_aggregate=BATCH), BATCH)]


def check_complete(recorder: Any, expected: int) -> None:
    """Every event once, notification ids exactly 1..expected (what the
    writers wrote, all of it, no gap; that a reader never sees id n+1 before
    n is proven by the recorder tests, with a concurrent reader)."""
    ids = [n.id for n in recorder.select_notifications(1, expected + 1)]
    if ids != list(range(1, expected + 1)):
        missing = sorted(set(range(1, expected + 1)) - set(ids))[:5]
        raise AssertionError(
            f"{len(ids)} notifications of {expected} written, ids not 1..{expected}"
            f" (missing e.g. {missing})"
        )


def _shares(scale: int) -> list[int]:
    """Each writer's number of events: whole batches, adding up to ``scale``."""
    batches_total = scale // BATCH
    return [
        (batches_total // WRITERS + (1 if i < batches_total % WRITERS else 0)) * BATCH
        for i in range(WRITERS)
    ]


class _Repeat:
    """The database of the current repeat and a recorder on it (which created
    its tables before any writer attaches), checked before the next repeat."""

    def __init__(self, plan: Plan, kind: Kind, library: str, scale: int) -> None:
        self.plan, self.kind, self.library = plan, kind, library
        self.expected = sum(_shares(scale))
        self.fresh = Fresh()
        self.recorder: Any = None
        self.written = False  # set by the timed block when it has run

    def next(self) -> str:
        self.finish()
        database = new_database(self.kind, self.plan, self.fresh)
        self.recorder = attach_recorder(self.kind, self.library, database, self.fresh)
        return database

    def finish(self) -> None:
        """Check the last repeat's writes (if it ran), then close its recorder
        and remove its database."""
        recorder, self.recorder = self.recorder, None
        written, self.written = self.written, False
        try:
            if written:
                check_complete(recorder, self.expected)
        finally:
            self.fresh.release()


# Processes.


def serve(commands: Any, replies: Any, handle: Callable[[str, Any], None]) -> None:
    """A writer process's loop: ``handle(command, argument)`` for each command
    until ``("stop", None)``, or until the parent dies without stopping it
    (orphaned: checked once a second). A command that raises is replied to
    with ("error", traceback), and the loop goes on."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            command, argument = commands.get(timeout=1)
        except queue.Empty:
            if parent is None or parent.is_alive():
                continue
            return
        if command == "stop":
            return
        try:
            handle(command, argument)
        except BaseException:
            replies.put(("error", traceback.format_exc()))


def writer_process(library: str, kind: Kind, commands: Any, replies: Any) -> None:
    """A writer process: ``("attach", (database, share))`` makes a recorder and
    the stored events, ``("go", None)`` inserts them, ``("stop", None)`` ends.
    Replies "ready", "done", or ("error", traceback)."""
    attached = Fresh()  # the recorder of the database last attached to
    recorder: Any = None
    events: list[list[Any]] = []

    def handle(command: str, argument: Any) -> None:
        nonlocal recorder, events
        if command == "attach":
            recorder, events = None, []
            attached.release()
            database, share = argument
            recorder = attach_recorder(
                kind, library, database, attached, create_table=False
            )
            events = stored_batches(library, share)
            # Connected and warm before the clock starts (pools connect
            # lazily, in the background).
            recorder.max_notification_id()
            replies.put("ready")
        elif command == "go":
            insert = recorder.insert_events
            for batch in events:
                insert(batch)
            replies.put("done")

    try:
        serve(commands, replies, handle)
    finally:
        attached.release()


class Writers:
    """``count`` processes running ``target(library, kind, commands, replies)``
    (by default ``WRITERS`` of ``writer_process``), started on first use and
    kept until closed."""

    def __init__(
        self,
        library: str,
        kind: Kind,
        *,
        count: int = WRITERS,
        target: Callable[..., None] | None = None,
    ) -> None:
        self.library, self.kind = library, kind
        self.count = count
        self.target = target or writer_process
        self.procs: list[Any] = []
        self.commands: list[Any] = []
        self.replies: Any = None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.replies = context.Queue()
        for _ in range(self.count):
            commands = context.Queue()
            proc = context.Process(
                target=self.target,
                args=(self.library, self.kind, commands, self.replies),
                daemon=True,
            )
            proc.start()
            self.procs.append(proc)
            self.commands.append(commands)

    def send(self, messages: Sequence[tuple[str, Any]], expect: str) -> None:
        """Sends each writer its message and waits for every reply; fails at
        once if a writer process exits, and after all replies if one failed."""
        if not self.procs:
            self.start()
        for commands, message in zip(self.commands, messages, strict=True):
            commands.put(message)
        failures: list[str] = []
        waiting = len(self.procs)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while waiting:
            try:
                reply = self.replies.get(timeout=0.2)
            except queue.Empty:
                dead = [proc for proc in self.procs if not proc.is_alive()]
                if dead:
                    msg = f"a writer process exited (exit code {dead[0].exitcode})"
                    raise RuntimeError(msg) from None
                if time.monotonic() > deadline:
                    msg = f"{waiting} writer processes did not reply"
                    raise TimeoutError(msg) from None
                continue
            waiting -= 1
            if reply != expect:
                failures.append(reply[1])
        if failures:
            raise RuntimeError("a writer process failed:\n" + failures[0])

    def close(self) -> None:
        for commands in self.commands:
            commands.put(("stop", None))
        for proc in self.procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
        self.procs, self.commands = [], []


def _process_twin(plan: Plan, kind: Kind, library: str, scale: int) -> Twin:
    repeat = _Repeat(plan, kind, library, scale)
    writers = Writers(library, kind)
    shares = _shares(scale)

    def prepare() -> Callable[[], object]:
        database = repeat.next()
        writers.send([("attach", (database, share)) for share in shares], "ready")
        go = [("go", None)] * WRITERS

        def block() -> None:
            writers.send(go, "done")
            repeat.written = True

        return block

    def close() -> None:
        try:
            writers.close()
        finally:
            repeat.finish()

    return Twin(prepare, close)


# Threads.


def _thread_twin(plan: Plan, kind: Kind, library: str, scale: int) -> Twin:
    repeat = _Repeat(plan, kind, library, scale)
    shares = _shares(scale)

    def prepare() -> Callable[[], object]:
        repeat.next()
        repeat.recorder.max_notification_id()  # connected, as the processes are
        insert = repeat.recorder.insert_events
        work = [stored_batches(library, share) for share in shares]
        failures: list[BaseException] = []

        def write(events: list[list[Any]]) -> None:
            try:
                for batch in events:
                    insert(batch)
            except BaseException as e:
                failures.append(e)

        def block() -> None:
            threads = [threading.Thread(target=write, args=(w,)) for w in work]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if failures:
                raise failures[0]
            repeat.written = True

        return block

    return Twin(prepare, repeat.finish)
