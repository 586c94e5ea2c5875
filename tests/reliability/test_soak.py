"""Soak: writer processes and a follower, SIGKILLed at random, lose nothing.

Four writer processes save batches of Items to one database (an SQLite file,
or PostgreSQL) while a follower process (a Copier, driven by
``pull_and_process`` in a loop) processes them. A seeded schedule SIGKILLs a
random writer or the follower and restarts it, again and again. At the end:

- every batch a writer was told was committed (``save()`` returned, then the
  writer journaled it) is stored, complete, with the ids it was given;
- nothing else is stored, except, for each *killed* writer incarnation, the
  one batch it had started saving (journaled ``TRY``) when it was killed. A
  writer saves its batches one after another, so at most one save is in flight
  when it dies; that save may have committed before the kill (the writer
  died between COMMIT and journaling), so it may or may not be stored. It must
  be all or nothing;
- notification ids are gap-free on SQLite (rowids of a table never deleted
  from). On PostgreSQL a killed or failed insert has drawn ids from the
  sequence and rolled back, so gaps are allowed by design (docs/postgres.md,
  "Gaps"); ids must still be unique and increasing;
- the follower processed each upstream notification exactly once: its tracking
  position is the leader's max notification id, and its Records name every
  upstream notification id once, no duplicates and none missing.

Bounded: about 8 s of churn per backend, deterministic kill schedule.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.persistence_envs import POSTGRES, postgres_schema
from tests.reliability.fault_helpers import follower_main, writer_main
from tests.system_apps import Copier, Item, Items

WRITERS = 4
BATCH_SIZE = 5
CHURN_SECONDS = 8.0
SEEDS = {"sqlite": 1001, "postgres": 2002}

CTX = multiprocessing.get_context("spawn")


def _envs(kind: str, tmp_path: Path, schema: str | None) -> tuple[dict, dict]:
    if kind == "sqlite":
        items = {
            "PERSISTENCE_MODULE": "esox.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "items.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "20",
        }
        copier = {
            "PERSISTENCE_MODULE": "esox.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "copier.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "20",
        }
        return items, copier
    assert schema is not None
    env = {"PERSISTENCE_MODULE": "esox.postgres", "POSTGRES_SCHEMA": schema} | POSTGRES
    return dict(env), dict(env)


class Churn:
    """Starts, SIGKILLs and restarts the writer and follower processes."""

    def __init__(self, tmp_path: Path, items_env: dict, copier_env: dict) -> None:
        self.tmp_path = tmp_path
        self.items_env = items_env
        self.copier_env = copier_env
        self.stop_file = str(tmp_path / "stop")
        self.done_file = str(tmp_path / "follower-done")
        self.journals = [str(tmp_path / f"journal-{w}.log") for w in range(WRITERS)]
        self.incarnation = [0] * WRITERS
        self.killed: set[tuple[int, int]] = set()  # (writer, incarnation)
        self.writers: list[Any] = [None] * WRITERS
        self.follower: Any = None
        self.follower_kills = 0

    def start_writer(self, w: int) -> None:
        self.incarnation[w] += 1
        p = CTX.Process(
            target=writer_main,
            args=(
                self.items_env,
                self.journals[w],
                w,
                self.incarnation[w],
                BATCH_SIZE,
                self.stop_file,
            ),
            daemon=True,
        )
        p.start()
        self.writers[w] = p

    def start_follower(self) -> None:
        p = CTX.Process(
            target=follower_main,
            args=(self.items_env, self.copier_env, self.stop_file, self.done_file),
            daemon=True,
        )
        p.start()
        self.follower = p

    def kill(self, p: Any) -> None:
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
        assert p.exitcode == -signal.SIGKILL, p.exitcode

    def run(self, seed: int) -> None:
        rng = random.Random(seed)
        for w in range(WRITERS):
            self.start_writer(w)
        self.start_follower()
        deadline = time.monotonic() + CHURN_SECONDS
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.3, 0.9))
            victim = rng.randrange(WRITERS + 1)
            if victim == WRITERS:
                self.kill(self.follower)
                self.follower_kills += 1
                self.start_follower()
            else:
                p = self.writers[victim]
                if p.exitcode is not None:
                    pytest.fail(f"writer {victim} died by itself: {p.exitcode}")
                self.kill(p)
                self.killed.add((victim, self.incarnation[victim]))
                self.start_writer(victim)
        Path(self.stop_file).write_text("stop")
        for w, p in enumerate(self.writers):
            p.join(60)
            assert p.exitcode == 0, f"writer {w} exit code {p.exitcode}"
        self.follower.join(60)
        assert self.follower.exitcode == 0, (
            f"follower exit code {self.follower.exitcode}"
        )

    def cleanup(self) -> None:
        for p in [*self.writers, self.follower]:
            if p is not None and p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
                p.join(10)


def _read_journal(path: str) -> tuple[dict, dict, list[str]]:
    """(told committed {(inc, batch): ids}, last TRY per incarnation, errors)."""
    ok: dict[tuple[int, int], list[str]] = {}
    last_try: dict[int, int] = {}
    errors: list[str] = []
    if not os.path.exists(path):
        return ok, last_try, errors
    for line in Path(path).read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "TRY":
            inc, batch = map(int, rest.split())
            last_try[inc] = batch
        elif kind == "OK":
            inc_s, batch_s, ids = rest.split(" ")
            ok[(int(inc_s), int(batch_s))] = ids.split(",")
        else:
            errors.append(line)
    return ok, last_try, errors


def _check(kind: str, churn: Churn) -> dict[str, int]:
    items = Items(env=churn.items_env)
    copier = Copier(env=churn.copier_env)
    try:
        notifications = items.recorder.select_notifications(None, 10_000_000)
        ids = [n.id for n in notifications]
        assert ids == sorted(set(ids)), "notification ids not unique and increasing"
        if kind == "sqlite":
            assert ids == list(range(1, len(ids) + 1)), "gap in SQLite notification ids"
        events = items.mapper.to_domain_events(notifications)
        assert all(isinstance(e, Item.Created) for e in events)
        stored: dict[tuple[int, int, int], dict[int, str]] = defaultdict(dict)
        for e in events:
            w, inc, batch, k = e.label.split(":")
            key = (int(w[1:]), int(inc[1:]), int(batch[1:]))
            assert int(k) not in stored[key], f"duplicate label {e.label}"
            stored[key][int(k)] = e.originator_id.hex

        told = 0
        in_flight_stored = 0
        for w in range(WRITERS):
            ok, last_try, errors = _read_journal(churn.journals[w])
            assert not errors, f"writer {w} errors: {errors}"
            for (inc, batch), batch_ids in ok.items():
                told += 1
                got = stored.get((w, inc, batch))
                assert got is not None, f"committed batch lost: w{w} i{inc} b{batch}"
                assert [got[k] for k in range(BATCH_SIZE)] == batch_ids, (
                    f"batch w{w} i{inc} b{batch} stored with other ids"
                )
            for (sw, inc, batch), got in stored.items():
                if sw != w or (inc, batch) in ok:
                    continue
                # Not journaled: must be the in-flight batch of a killed incarnation.
                assert (w, inc) in churn.killed, (
                    f"unjournaled batch w{w} i{inc} b{batch} of a writer not killed"
                )
                assert last_try.get(inc) == batch, (
                    f"unjournaled batch w{w} i{inc} b{batch} is not the one in flight"
                )
                assert len(got) == BATCH_SIZE, f"partial batch w{w} i{inc} b{batch}"
                in_flight_stored += 1

        # The follower: exactly once.
        max_id = items.recorder.max_notification_id() or 0
        assert copier.recorder.max_tracking_id("Items") == max_id
        records = copier.records()
        processed = [n for (_, n, _) in records]
        assert processed == ids, "follower skipped or repeated notifications"
        own_ids = [n.id for n in copier.recorder.select_notifications(None, 10_000_000)]
        assert len(own_ids) == len(set(own_ids)) == len(ids)
        if kind == "sqlite":
            assert own_ids == list(range(1, len(own_ids) + 1))
        return {
            "told": told,
            "in_flight_stored": in_flight_stored,
            "notifications": len(ids),
        }
    finally:
        copier.close()
        items.close()


def _soak(kind: str, tmp_path: Path, schema: str | None = None) -> None:
    items_env, copier_env = _envs(kind, tmp_path, schema)
    # Create the tables once, before the races begin.
    Items(env=items_env).close()
    Copier(env=copier_env).close()
    churn = Churn(tmp_path, items_env, copier_env)
    try:
        churn.run(SEEDS[kind])
    finally:
        churn.cleanup()
    stats = _check(kind, churn)
    assert len(churn.killed) >= 3, "schedule killed too few writers to mean anything"
    assert stats["told"] > 20, stats
    print(
        f"{kind}: {stats}, writers killed {len(churn.killed)}, "
        f"follower killed {churn.follower_kills}"
    )


def test_soak_sqlite(tmp_path: Path) -> None:
    _soak("sqlite", tmp_path)


def test_soak_postgres(tmp_path: Path) -> None:
    with postgres_schema() as schema:
        _soak("postgres", tmp_path, schema)
