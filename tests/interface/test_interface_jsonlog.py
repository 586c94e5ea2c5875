"""eventsourcing's in-process JSON interface to a notification log."""

from __future__ import annotations

import json
from uuid import UUID

from esox import Aggregate, Application, BaseAggregate, event
from esox.interface import (
    NotificationLogInterface,
    NotificationLogJSONClient,
    NotificationLogJSONService,
)


class Item(Aggregate):
    @event("Made")
    def __init__(self, name: str) -> None:
        self.name = name


class Label(BaseAggregate[str]):
    @event("Made")
    def __init__(self, text: str) -> None:
        self.text = text


def test_client_reads_back_what_the_service_serialised() -> None:
    app = Application[UUID]()
    items = [Item(f"item {i}") for i in range(3)]
    app.save(*items)
    service = NotificationLogJSONService(app)
    assert isinstance(service, NotificationLogInterface)
    client = NotificationLogJSONClient(service)

    section = client["1,2"]
    assert section.id == "1,2"
    assert section.next_id == "3,4"
    assert [n.originator_id for n in section.items] == [i.id for i in items[:2]]
    assert section.items == app.notification_log["1,2"].items

    selected = client.select(start=2, limit=10)
    assert [n.id for n in selected] == [2, 3]
    assert selected == list(app.notification_log.select(start=2, limit=10))
    assert [n.id for n in client.select(start=1, limit=10, stop=2)] == [1, 2]
    assert client.select(start=1, limit=10, inclusive_of_start=False)[0].id == 2


def test_string_ids_stay_strings_and_state_bytes_round_trip() -> None:
    app = Application[str](env={"ORIGINATOR_ID_TYPE": "text"})
    label = Label(id="label-1", text="é")
    app.save(label)
    body = json.loads(NotificationLogJSONService(app).get_notifications(1, 10))
    assert body[0]["originator_id"] == "label-1"
    (notification,) = NotificationLogJSONClient(NotificationLogJSONService(app)).select(
        1, 10
    )
    assert notification.originator_id == "label-1"
    assert notification.state == app.recorder.select_notifications(1, 1)[0].state
