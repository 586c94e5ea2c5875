"""The ``_insert_events`` hook tests that every SQL backend passes.

A recorder subclass keeps a note per event in a table of its own, written by
its ``_insert_events`` hook in the transaction that inserts the events. A
backend's module subclasses :class:`InsertHookCases` as ``Test...``, gives
its noted recorder and its notes, and defines the ``datastore`` fixture the
cases take.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from esox.persistence import ApplicationRecorder, IntegrityError, StoredEvent


def event(originator_id: Any = None, version: int = 1) -> StoredEvent:
    return StoredEvent(originator_id or uuid4(), version, "topic", b"{}")


class InsertHookCases:
    """What a hook's rows do with the events they are inserted with."""

    # What a hook statement on a missing table raises, and its message.
    missing_table_error: type[Exception]
    missing_table_message: str

    def noted_recorder(self, datastore: Any) -> ApplicationRecorder:
        """A recorder whose hook writes notes, its tables created."""
        raise NotImplementedError

    def notes(self, datastore: Any) -> list[tuple[str, str]]:
        """The notes written, as (originator id, note), in insertion order."""
        raise NotImplementedError

    def check_writers_go_on_after_a_failed_hook(
        self, datastore: Any, recorder: ApplicationRecorder, stored: StoredEvent
    ) -> None:
        """What the backend holds for writers after a hook failed: an insert
        of ``stored``, not yet recorded, gets the first id."""
        raise NotImplementedError

    def test_a_hook_writes_its_rows_in_the_transaction_of_the_events(
        self, datastore: Any
    ) -> None:
        recorder = self.noted_recorder(datastore)
        e1, e2 = event(), event()
        assert recorder.insert_events([e1, e2], note="hello") == [1, 2]
        assert self.notes(datastore) == [
            (str(e1.originator_id), "hello"),
            (str(e2.originator_id), "hello"),
        ]
        assert recorder.select_events(e1.originator_id) == [e1]
        assert [n.id for n in recorder.select_notifications(1, 10)] == [1, 2]
        # No events: the hook still runs (rows of its own only), no ids drawn.
        assert recorder.insert_events([], note="none") == []
        assert recorder.max_notification_id() == 2

    def test_a_failing_hook_statement_rolls_back_the_events_and_its_rows(
        self, datastore: Any
    ) -> None:
        recorder = self.noted_recorder(datastore)
        e1 = event()
        with pytest.raises(self.missing_table_error, match=self.missing_table_message):
            recorder.insert_events([e1], note="lost", fail=True)
        assert recorder.select_events(e1.originator_id) == []
        assert self.notes(datastore) == []
        assert recorder.max_notification_id() is None
        self.check_writers_go_on_after_a_failed_hook(datastore, recorder, e1)

    def test_a_conflict_of_the_events_rolls_back_the_hook_rows(
        self, datastore: Any
    ) -> None:
        recorder = self.noted_recorder(datastore)
        e1 = event()
        recorder.insert_events([e1], note="first")
        with pytest.raises(IntegrityError, match="already recorded"):
            recorder.insert_events([e1], note="second")
        assert self.notes(datastore) == [(str(e1.originator_id), "first")]
