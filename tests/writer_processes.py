"""What the tests that race or kill writer processes share: gathering what the
processes report, killing one at the end of a block, and a writer that
inserts until it is killed."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from typing import Any, NoReturn, Protocol

from esox.persistence import StoredEvent


class Inserts(Protocol):
    """A recorder (esox's, or the Rust SqliteRecorder) that inserts events."""

    def insert_events(self, stored_events: Sequence[StoredEvent]) -> object: ...


def results_of(
    processes: Sequence[BaseProcess], queue: Any, timeout: float
) -> list[Any]:
    """Start the processes, take one result each from ``queue`` (in the order
    they come, each within ``timeout`` seconds), then join them."""
    for process in processes:
        process.start()
    results = [queue.get(timeout=timeout) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    return results


@contextmanager
def killed_at_the_end(process: BaseProcess) -> Iterator[None]:
    """Start ``process``; SIGKILL it when the block ends (however it ends),
    and wait for it to die."""
    process.start()
    try:
        yield
    finally:
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=30)


def insert_batches_until_killed(
    recorder: Inserts, prefix: str, batch_size: int, state: bytes
) -> NoReturn:
    """Insert batches of ``batch_size`` events, each a new aggregate's (named
    ``prefix-n``), until the process is killed."""
    n = 0
    while True:
        n += 1
        recorder.insert_events(
            [
                StoredEvent(f"{prefix}-{n}", v, "t:E", state)
                for v in range(1, batch_size + 1)
            ]
        )
