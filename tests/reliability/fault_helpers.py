"""Child-process entry points for the soak and fault tests.

They live in an importable module (not a test file) so ``multiprocessing``'s
spawn start method can find them in the child.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any


def _append_line(path: str, line: str) -> None:
    """Append one line with a single write(2) on an O_APPEND descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def writer_main(
    env: dict[str, str],
    journal: str,
    writer: int,
    incarnation: int,
    batch_size: int,
    stop_file: str,
) -> None:
    """Save batches of Items until ``stop_file`` exists.

    Each batch's labels are ``w<writer>:i<incarnation>:b<batch>:<k>``. A batch
    is journaled (``OK <incarnation> <batch> <id,id,...>``) only after
    ``save()`` returned: the writer was told it was committed.
    """
    from tests.system_apps import Items

    app = Items(env=env)
    batch = 0
    try:
        while not os.path.exists(stop_file):
            labels = [
                f"w{writer}:i{incarnation}:b{batch}:{k}" for k in range(batch_size)
            ]
            _append_line(journal, f"TRY {incarnation} {batch}")
            try:
                ids = app.create_many(labels)
            except Exception as e:
                _append_line(
                    journal, f"ERR {incarnation} {batch} {type(e).__name__}: {e}"
                )
                raise
            _append_line(
                journal, f"OK {incarnation} {batch} {','.join(i.hex for i in ids)}"
            )
            batch += 1
            time.sleep(0.005)  # bounded volume, so the follower keeps up
    finally:
        app.close()


def follower_main(
    items_env: dict[str, str],
    copier_env: dict[str, str],
    stop_file: str,
    done_file: str,
) -> None:
    """Run a Copier following Items, pulling in a loop until ``stop_file``.

    After ``stop_file`` appears, pull until the position reaches the leader's
    max notification id, then write ``done_file``.
    """
    from tests.system_apps import Copier, Items

    items = Items(env=items_env)
    copier = Copier(env=copier_env)
    copier.follow("Items", items.notification_log)
    try:
        while not os.path.exists(stop_file):
            copier.pull_and_process("Items")
            time.sleep(0.01)
        for _ in range(1000):
            copier.pull_and_process("Items")
            if copier.position("Items") >= (items.recorder.max_notification_id() or 0):
                break
            time.sleep(0.01)
        Path(done_file).write_text(str(copier.position("Items")))
    finally:
        copier.close()
        items.close()


def sqlite_lock_holder(path: str, ready_file: str, release_file: str) -> None:
    """Hold ``BEGIN IMMEDIATE`` on ``path`` (python's sqlite3, in its own process)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    Path(ready_file).write_text("locked")
    deadline = time.monotonic() + 60
    while not os.path.exists(release_file) and time.monotonic() < deadline:
        time.sleep(0.02)
    conn.execute("ROLLBACK")
    conn.close()


def run_module_main(argv: list[str]) -> Any:  # pragma: no cover - manual use
    name = argv[1]
    return globals()[name](*argv[2:])


if __name__ == "__main__":  # pragma: no cover
    run_module_main(sys.argv)
