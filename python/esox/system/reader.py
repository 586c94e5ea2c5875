"""The log reader: follows a notification log, local or remote, in order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from esox.application import NotificationLog
from esox.persistence import Notification

__all__ = ["NotificationLogReader"]


class NotificationLogReader:
    """Reads a notification log section by section, or in selected batches.

    Works the same over a local log and a remote (HTTP) one.
    """

    DEFAULT_SECTION_SIZE = 10

    def __init__(
        self,
        notification_log: NotificationLog,
        section_size: int = DEFAULT_SECTION_SIZE,
    ) -> None:
        self.notification_log = notification_log
        self.section_size = section_size

    def read(self, *, start: int) -> Iterator[Notification]:
        """Yield notifications from ``start``, following sections by ``next_id``."""
        section_id: str | None = f"{start},{start + self.section_size - 1}"
        while section_id is not None:
            section = self.notification_log[section_id]
            yield from section.items
            section_id = section.next_id

    def select(
        self,
        *,
        start: int | None,
        stop: int | None = None,
        topics: Sequence[str] = (),
        inclusive_of_start: bool = True,
    ) -> Iterator[Sequence[Notification]]:
        """Yield batches (up to ``section_size``) from ``start`` until none are left."""
        while True:
            batch = self.notification_log.select(
                start=start,
                limit=self.section_size,
                stop=stop,
                topics=topics,
                inclusive_of_start=inclusive_of_start,
            )
            if not batch:
                return
            start = batch[-1].id + 1 if inclusive_of_start else batch[-1].id
            yield batch
