"""Writers that scale on PostgreSQL: 1, 4 and 8 processes, each saving new
one-event aggregates, one command and one transaction each (family
"pg writers").

The sides: esox and eventsourcing 9.x applications (``Application.save``
of a new ``Dog``), and, as the limit, ``pgbench`` running a one-row INSERT
transaction of the same size into the same table shape, with as many
clients. Every side runs its writers against the same server in the same
run; a repeat's block starts the writers together and ends when the last is
done. After a block the notification ids must be exactly 1..N, or the
workload fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import partial
from typing import Any

from esox.bench.harness import Twin, Workload
from esox.bench.plan import POSTGRES_ENV, Plan
from esox.bench.workloads.concurrent import Writers, check_complete, serve
from esox.bench.workloads.storage import (
    Fresh,
    Kind,
    attach_recorder,
    database_env,
    kinds,
    new_database,
)

__all__ = ["WRITER_COUNTS", "commands_per_block", "workloads"]

WRITER_COUNTS = (1, 4, 8)
FAMILY = "pg writers"


def commands_per_block(plan: Plan) -> int:
    """Commands of one timed block, shared by the writers (a few seconds)."""
    return 240 if plan.quick else 1_200


def workloads(plan: Plan) -> list[Workload]:
    """One workload per number of writer processes, on PostgreSQL only."""
    found: list[Workload] = []
    if not any(kind.store == "postgres" for kind in kinds(plan)):
        return found
    kind = Kind("PostgreSQL", "postgres")
    total = commands_per_block(plan)
    for count in WRITER_COUNTS:
        plural = "processes" if count > 1 else "process"
        found.append(
            Workload(
                family=FAMILY,
                variant=f"PostgreSQL, {count} writer {plural}",
                scale=total,
                units=total,
                unit="command",
                build=partial(build, plan, kind, count, total),
                repeats=plan.repeats,
                persistence=kind.name,
                limit_name="pgbench",
                note="new one-event aggregates, a command a transaction; "
                "limit: pgbench one-row INSERT transactions, as many clients",
            )
        )
    return found


def build(plan: Plan, kind: Kind, count: int, total: int) -> dict[str, Twin]:
    """esox, eventsourcing (if installed) and pgbench (if on PATH)."""
    twins = {"esox": _app_twin(plan, kind, "esox", count, total)}
    if plan.eventsourcing:
        twins["eventsourcing"] = _app_twin(plan, kind, "eventsourcing", count, total)
    if shutil.which("pgbench"):
        twins["limit"] = _pgbench_twin(plan, kind, count, total)
    return twins


def _shares(count: int, total: int) -> list[int]:
    return [total // count + (1 if i < total % count else 0) for i in range(count)]


def app_writer(library: str, kind: Kind, commands: Any, replies: Any) -> None:
    """A writer process: ``("attach", (schema, share))`` makes an application,
    ``("go", None)`` saves ``share`` new dogs one by one, ``("stop", None)``
    ends. Replies "ready", "done", or ("error", traceback)."""
    app: Any = None
    share = 0

    def handle(command: str, argument: Any) -> None:
        nonlocal app, share
        if command == "attach":
            if app is not None:
                app.close()
            schema, share = argument
            # One connection a writer (the server's max_connections is
            # shared by every side's processes, alive at once).
            env = database_env(kind, library, schema) | {
                "CREATE_TABLE": "false",
                "POSTGRES_POOL_SIZE": "1",
                "POSTGRES_MAX_OVERFLOW": "1",
            }
            app = _application(library, env)
            # Connected and warm before the clock starts.
            app.recorder.max_notification_id()
            replies.put("ready")
        elif command == "go":
            dog, save = _dog_class(library), app.save
            for i in range(share):
                save(dog(f"dog {i}"))
            replies.put("done")

    try:
        serve(commands, replies, handle)
    finally:
        if app is not None:
            app.close()


def _application(library: str, env: dict[str, str]) -> Any:
    if library == "esox":
        from esox import Application

        return Application[Any](env=env)
    from eventsourcing.application import Application as EsApplication

    return EsApplication[Any](env=env)


def _dog_class(library: str) -> Any:
    if library == "esox":
        from esox.bench.models import Dog

        return Dog
    from esox.bench.es_models import Dog as EsDog

    return EsDog


def _app_twin(plan: Plan, kind: Kind, library: str, count: int, total: int) -> Twin:
    fresh = Fresh()
    writers = Writers(library, kind, count=count, target=app_writer)
    shares = _shares(count, total)
    state: dict[str, Any] = {}

    def finish() -> None:
        recorder, written = state.pop("recorder", None), state.pop("written", False)
        try:
            if written:
                check_complete(recorder, total)
        finally:
            fresh.release()

    def prepare() -> Callable[[], object]:
        finish()
        schema = new_database(kind, plan, fresh)
        # The tables, before any writer attaches (eventsourcing's DDL run by
        # several processes at once fails).
        app = _application(library, database_env(kind, library, schema))
        fresh.on_release(app.close)
        state["recorder"] = app.recorder
        writers.send([("attach", (schema, share)) for share in shares], "ready")
        go = [("go", None)] * count

        def block() -> None:
            writers.send(go, "done")
            state["written"] = True

        return block

    def close() -> None:
        try:
            writers.close()
        finally:
            finish()

    return Twin(prepare, close)


def _pgbench_twin(plan: Plan, kind: Kind, count: int, total: int) -> Twin:
    fresh = Fresh()
    per_client = max(total // count, 1)
    env = os.environ | {
        "PGDATABASE": POSTGRES_ENV["POSTGRES_DBNAME"],
        "PGHOST": POSTGRES_ENV["POSTGRES_HOST"],
        "PGPORT": POSTGRES_ENV["POSTGRES_PORT"],
        "PGUSER": POSTGRES_ENV["POSTGRES_USER"],
        "PGPASSWORD": POSTGRES_ENV["POSTGRES_PASSWORD"],
    }

    def prepare() -> Callable[[], object]:
        fresh.release()
        schema = new_database(kind, plan, fresh)
        attach_recorder(kind, "esox", schema, fresh)  # the same table
        handle, script = tempfile.mkstemp(suffix=".sql", prefix="esox-pgbench-")
        fresh.on_release(lambda: os.remove(script))
        # No ':' in the script: pgbench reads ':name' as a variable.
        with os.fdopen(handle, "w") as file:
            file.write(
                f'INSERT INTO "{schema}".stored_events (originator_id, '
                "originator_version, topic, state) VALUES (gen_random_uuid(), 1, "
                "'esox.bench.models.Dog.Registered', "
                "decode(repeat('ab', 100), 'hex'));\n"
            )
        command = [
            "pgbench", "-n", "-M", "prepared", "-c", str(count), "-j", str(count),
            "-t", str(per_client), "-f", script,
        ]  # fmt: skip

        def block() -> None:
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0 or "aborted" in done.stdout + done.stderr:
                msg = f"pgbench failed: {done.stderr.strip() or done.stdout.strip()}"
                raise RuntimeError(msg)

        return block

    return Twin(prepare, fresh.release)
