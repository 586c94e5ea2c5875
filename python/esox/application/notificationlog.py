"""The notification log: an application's events, in the order they were recorded."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from esox.persistence import ApplicationRecorder, Notification

__all__ = ["LocalNotificationLog", "NotificationLog", "Section"]


@dataclass(frozen=True)
class Section:
    """A run of notifications: ``id`` is "first,last" of the items present;
    ``next_id`` is set only when the section is full."""

    id: str | None
    items: Sequence[Notification]
    next_id: str | None


class NotificationLog(ABC):
    """Notifications by section (``log["1,10"]``) or by selection."""

    @abstractmethod
    def __getitem__(self, section_id: str) -> Section:
        """The section ``"first,last"`` (1-based, inclusive)."""

    @abstractmethod
    def select(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """Up to ``limit`` notifications from ``start`` (to ``stop``, of ``topics``)."""

    @staticmethod
    def format_section_id(first_id: int, last_id: int) -> str:
        """A section id: ``"first,last"``."""
        return f"{first_id},{last_id}"


def parse_section_id(section_id: str) -> tuple[int, int]:
    """Read ``"first,last"``; ValueError naming the id when it is malformed."""
    parts = section_id.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        first, last = int(parts[0]), int(parts[1])
    except ValueError:
        msg = f"Invalid section id {section_id!r}: expected 'first,last' integers"
        raise ValueError(msg) from None
    if not (-MAX_ID <= first <= MAX_ID and -MAX_ID <= last <= MAX_ID):
        msg = f"Invalid section id {section_id!r}: ids must fit in 64 bits"
        raise ValueError(msg)
    return first, last


MAX_ID = 2**63 - 1
"""The largest notification id any recorder can hold (a signed 64-bit integer)."""


class LocalNotificationLog(NotificationLog):
    """A notification log read from the application's recorder."""

    DEFAULT_SECTION_SIZE = 10

    def __init__(
        self, recorder: ApplicationRecorder, section_size: int = DEFAULT_SECTION_SIZE
    ) -> None:
        self.recorder = recorder
        self.section_size = section_size

    def __getitem__(self, section_id: str) -> Section:
        first, last = parse_section_id(section_id)
        start = max(1, first)
        limit = min(max(0, last - start + 1), self.section_size)
        items = self.select(start, limit) if limit else []
        if not items:
            return Section(id=None, items=[], next_id=None)
        last_id = items[-1].id
        next_id = (
            self.format_section_id(last_id + 1, last_id + limit)
            if len(items) == limit
            else None
        )
        return Section(
            id=self.format_section_id(items[0].id, last_id),
            items=items,
            next_id=next_id,
        )

    def select(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        if limit > self.section_size:
            msg = (
                f"Requested limit {limit} greater than section size {self.section_size}"
            )
            raise ValueError(msg)
        return self.recorder.select_notifications(
            start, limit, stop, topics, inclusive_of_start=inclusive_of_start
        )
