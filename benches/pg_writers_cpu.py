"""CPU a command of PostgreSQL writers: where the two cores cap "pg writers".

Run: python benches/pg_writers_cpu.py [COMMANDS] (default 600), with the
ESOX_BENCH_POSTGRES_* (or POSTGRES_*) variables of the benchmarks. It prints,
for esox and eventsourcing 9.x with 1, 4 and 8 writer processes saving new
one-event aggregates, the commands a second and the CPU (user + system, all
threads) of the writer processes a command; then, on one connection, the
server backend's CPU a transaction for esox's INSERT statement, a plain
one-row INSERT (what pgbench runs) and a NOTIFY alone. Not a pass/fail test.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import time
import uuid
from typing import Any

import psycopg

from esox.bench.plan import POSTGRES_ENV, postgres_conninfo

WRITERS = (1, 4, 8)


def _env(library: str, schema: str) -> dict[str, str]:
    module = "esox.postgres" if library == "esox" else "eventsourcing.postgres"
    return POSTGRES_ENV | {"PERSISTENCE_MODULE": module, "POSTGRES_SCHEMA": schema}


def _application(library: str, env: dict[str, str]) -> Any:
    if library == "esox":
        from esox import Application

        return Application[Any](env=env)
    os.environ.setdefault("EVENTSOURCING_DISABLE_REDEFINITION_CHECK", "y")
    from eventsourcing.application import Application as EsApplication

    return EsApplication[Any](env=env)


def _dog(library: str) -> Any:
    if library == "esox":
        from esox.bench.models import Dog

        return Dog
    from esox.bench.es_models import Dog as EsDog

    return EsDog


def writer(library: str, schema: str, commands: int, go: Any, out: Any) -> None:
    """A writer process: saves ``commands`` new dogs once ``go`` is set, and
    puts its CPU seconds for them in ``out``."""
    env = _env(library, schema) | {
        "CREATE_TABLE": "false",
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": "1",
    }
    app, dog = _application(library, env), _dog(library)
    app.recorder.max_notification_id()  # connected before the clock starts
    go.wait()
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(commands):
        app.save(dog("dog"))
    after = resource.getrusage(resource.RUSAGE_SELF)
    out.put(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    app.close()


def measure_writers(library: str, count: int, total: int) -> str:
    schema = f"esox_cpu_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        _application(library, _env(library, schema)).close()  # the tables
        context = multiprocessing.get_context("spawn")
        go, out = context.Event(), context.Queue()
        share = total // count
        procs = [
            context.Process(target=writer, args=(library, schema, share, go, out))
            for _ in range(count)
        ]
        for proc in procs:
            proc.start()
        time.sleep(3)  # all attached
        started = time.monotonic()
        go.set()
        cpu = sum(out.get(timeout=600) for _ in procs)
        elapsed = time.monotonic() - started
        for proc in procs:
            proc.join()
    finally:
        with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    done = share * count
    return (
        f"{library:13} {count} writers: {done / elapsed:7.0f} commands/s, "
        f"writer CPU {cpu / done * 1e6:5.0f} us a command"
    )


def _backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_server(transactions: int) -> list[str]:
    """The backend's CPU a transaction (needs the server on this host)."""
    schema = f"esox_cpu_{uuid.uuid4().hex[:8]}"
    env = _env("esox", schema)
    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        app = _application("esox", env)
        try:
            recorder = app.recorder
            table = f'"{schema}".application_events'
            state = "decode(repeat('ab', 100), 'hex')"
            row = f"gen_random_uuid(), 1, 'bench.Dog.Registered', {state}"
            esox_insert = recorder._sql_insert_one.replace(
                "(VALUES (%b::uuid, %b::bigint, %b::text, %b::bytea))",
                f"(VALUES ({row}))",
            )
            statements = {
                "esox INSERT (lock released before COMMIT)": esox_insert,
                "plain one-row INSERT (pgbench's)": (
                    f"INSERT INTO {table} (originator_id, originator_version, "
                    f"topic, state) VALUES ({row})"
                ),
                "NOTIFY alone": 'NOTIFY "application_events"',
            }
            (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone() or (0,)
            lines = []
            for name, statement in statements.items():
                for _ in range(50):
                    conn.execute(statement, prepare=True)  # type: ignore[arg-type]
                before = _backend_cpu(pid)
                for _ in range(transactions):
                    conn.execute(statement, prepare=True)  # type: ignore[arg-type]
                cpu = (_backend_cpu(pid) - before) / transactions
                lines.append(f"{name:42} server CPU {cpu * 1e6:5.0f} us a transaction")
            return lines
        finally:
            app.close()
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    for library in ("esox", "eventsourcing"):
        for count in WRITERS:
            print(measure_writers(library, count, total), flush=True)
    for line in measure_server(2_000):
        print(line)


if __name__ == "__main__":
    main()
