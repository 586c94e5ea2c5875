"""Group commit: batches that threads insert at the same time share a transaction.

Inserting transactions are serialised by the table lock (so that followers
never skip a notification), and each holds it through its COMMIT, which
waits for the WAL flush. Rather than queue for the lock one after another,
threads of one process hand their batches to a leader, who inserts all that
are waiting in one transaction: one round trip, one lock, one flush. While it
does, the next batches gather for the next leader.

Each batch stays atomic and keeps optimistic concurrency: if the combined
transaction fails on a conflict or bad data, nothing of it was written, and
its batches are inserted again one by one, so only the offending batch fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from esox.persistence.errors import DataError, IntegrityError, OperationalError

__all__ = ["GroupCommit"]

Columns = tuple[list[Any], list[int], list[str], list[bytes]]


class _Batch:
    __slots__ = ("columns", "done", "error", "ids", "lead")

    def __init__(self, columns: Columns) -> None:
        self.columns = columns
        self.ids: list[int] | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        # Set (with ``done``) when this batch's thread is to lead the next group.
        self.lead = False


class GroupCommit:
    """Combines concurrent ``insert`` calls into fewer transactions."""

    def __init__(self, insert: Callable[[Columns], list[int]]) -> None:
        self._insert = insert
        self._lock = threading.Lock()
        self._waiting: list[_Batch] = []
        self._busy = False

    def insert(self, columns: Columns) -> list[int]:
        """Insert one batch, maybe with others; its notification ids."""
        batch = _Batch(columns)
        with self._lock:
            self._waiting.append(batch)
            lead = not self._busy
            self._busy = True
        if not lead:
            batch.done.wait()
        if lead or batch.lead:
            self._lead()
        if batch.error is not None:
            if batch.lead or lead:
                raise batch.error
            # A fresh exception for each thread: one instance raised in
            # several threads would collect all their tracebacks.
            raise _copy(batch.error) from batch.error
        assert batch.ids is not None
        return batch.ids

    def _lead(self) -> None:
        with self._lock:
            group, self._waiting = self._waiting, []
        try:
            self._run(group)
        finally:
            with self._lock:
                if self._waiting:
                    successor = self._waiting[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._busy = False

    def _run(self, group: list[_Batch]) -> None:
        try:
            if len(group) == 1:
                self._run_alone(group[0])
                return
            merged: Columns = ([], [], [], [])
            for batch in group:
                ids, versions, topics, states = batch.columns
                merged[0].extend(ids)
                merged[1].extend(versions)
                merged[2].extend(topics)
                merged[3].extend(states)
            try:
                ids = self._insert(merged)
            except (IntegrityError, DataError):
                # Nothing was written: find the batch at fault.
                for batch in group:
                    self._run_alone(batch)
                return
            except BaseException as e:
                for batch in group:
                    batch.error = e
                raise
            start = 0
            for batch in group:
                end = start + len(batch.columns[0])
                batch.ids = ids[start:end]
                start = end
        finally:
            for batch in group:
                if batch.ids is None and batch.error is None:
                    batch.error = OperationalError("the group insert was interrupted")
                if not batch.lead:
                    batch.done.set()

    def _run_alone(self, batch: _Batch) -> None:
        try:
            batch.ids = self._insert(batch.columns)
        except BaseException as e:
            batch.error = e


def _copy(error: BaseException) -> BaseException:
    try:
        return type(error)(*error.args)
    except Exception:  # an exception class with an unusual constructor
        return error
