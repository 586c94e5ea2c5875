"""eventsourcing's in-process interface to a notification log as JSON
strings: a service that serialises an application's log, and a client log
that reads it back (with a transport of your own in between).

The items are esox's wire items (see ``esox.interface``): a string id keeps
its type, where eventsourcing's client would turn every id into a UUID.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from binascii import a2b_base64, b2a_base64
from collections.abc import Sequence
from typing import Any, Generic, TypeVar
from uuid import UUID

from esox.application import Application, NotificationLog, Section
from esox.persistence import Notification

__all__ = [
    "NotificationLogInterface",
    "NotificationLogJSONClient",
    "NotificationLogJSONService",
]

TApplication = TypeVar("TApplication", bound=Application[Any])


def _item(notification: Notification) -> dict[str, Any]:
    originator_id = notification.originator_id
    is_uuid = isinstance(originator_id, UUID)
    return {
        "id": notification.id,
        "originator_id": str(originator_id),
        "originator_id_type": "uuid" if is_uuid else "str",
        "originator_version": notification.originator_version,
        "topic": notification.topic,
        "state": b2a_base64(notification.state, newline=False).decode("ascii"),
    }


def notifications_from_items(items: list[dict[str, Any]]) -> list[Notification]:
    """Notifications from wire items (the HTTP client reads them too); each
    distinct UUID is parsed once per batch."""
    uuids: dict[str, UUID] = {}
    notifications = []
    for item in items:
        originator_id = item["originator_id"]
        if item["originator_id_type"] == "uuid":
            # Parsing a UUID costs more than the rest of the item: a batch often
            # holds many events of the same aggregate.
            uuid = uuids.get(originator_id)
            if uuid is None:
                uuid = uuids[originator_id] = UUID(originator_id)
            originator_id = uuid
        notifications.append(
            Notification(
                originator_id,
                item["originator_version"],
                item["topic"],
                a2b_base64(item["state"], strict_mode=True),
                item["id"],
            )
        )
    return notifications


class NotificationLogInterface(ABC):
    """Serialised sections and selections of a notification log."""

    @abstractmethod
    def get_log_section(self, section_id: str) -> str:
        """The section ``section_id`` (``"first,last"``) as JSON."""

    @abstractmethod
    def get_notifications(
        self,
        start: int | None,
        limit: int,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> str:
        """A selection of notifications as JSON."""


class NotificationLogJSONService(NotificationLogInterface, Generic[TApplication]):
    """Serialises an application's notification log as JSON strings."""

    def __init__(self, app: TApplication) -> None:
        self.app = app

    def get_log_section(self, section_id: str) -> str:
        section = self.app.notification_log[section_id]
        return json.dumps(
            {
                "id": section.id,
                "next_id": section.next_id,
                "items": [_item(n) for n in section.items],
            }
        )

    def get_notifications(
        self,
        start: int | None,
        limit: int,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> str:
        notifications = self.app.notification_log.select(
            start, limit, topics=topics, inclusive_of_start=inclusive_of_start
        )
        return json.dumps([_item(n) for n in notifications])


class NotificationLogJSONClient(NotificationLog):
    """A notification log read through a ``NotificationLogInterface``."""

    def __init__(self, interface: NotificationLogInterface) -> None:
        self.interface = interface

    def __getitem__(self, section_id: str) -> Section:
        section = json.loads(self.interface.get_log_section(section_id))
        return Section(
            id=section["id"],
            next_id=section["next_id"],
            items=notifications_from_items(section["items"]),
        )

    def select(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        body = self.interface.get_notifications(
            start, limit, topics, inclusive_of_start=inclusive_of_start
        )
        notifications = notifications_from_items(json.loads(body))
        if stop is not None:
            notifications = [n for n in notifications if n.id <= stop]
        return notifications
