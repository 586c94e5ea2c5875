"""Applications for the system and runner tests (importable by child processes).

``Items`` leads; each follower writes one ``Record`` per upstream event it
processes, naming the upstream notification, so tests can check that every
event was processed exactly once, in order.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from esox import Aggregate, Application, event
from esox.application import ProcessingEvent
from esox.system import Follower, ProcessApplication, System, singledispatchmethod
from esox.utils import get_topic


class Item(Aggregate):
    @event("Created")
    def __init__(self, label: str) -> None:
        self.label = label
        self.tags: list[str] = []

    @event("Tagged")
    def tag(self, tag: str) -> None:
        self.tags.append(tag)


class Items(Application[UUID]):
    def create(self, label: str) -> UUID:
        item = Item(label)
        self.save(item)
        return item.id

    def create_many(self, labels: list[str]) -> list[UUID]:
        items = [Item(label) for label in labels]
        self.save(*items)
        return [item.id for item in items]

    def tag(self, item_id: UUID, tag: str) -> None:
        item: Item = self.repository.get(item_id)
        item.tag(tag)
        self.save(item)


class Record(Aggregate):
    """A follower's note that it processed one upstream event."""

    @staticmethod
    def create_id(source: str, notification_id: int) -> UUID:
        return uuid5(NAMESPACE_URL, f"/record/{source}/{notification_id}")

    @event("Made")
    def __init__(
        self, source: str, notification_id: int, topic: str, label: str
    ) -> None:
        self.source = source
        self.notification_id = notification_id
        self.topic = topic
        self.label = label


class Recording(ProcessApplication[UUID]):
    """Writes a Record for each event; raises on the labels it refuses."""

    refused: tuple[str, ...] = ("boom",)

    @singledispatchmethod
    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        tracking = processing_event.tracking
        assert tracking is not None
        label = getattr(domain_event, "label", "") or getattr(domain_event, "tag", "")
        if label in self.refused:
            msg = f"policy refused {label!r}"
            raise ValueError(msg)
        processing_event.collect_events(
            Record(
                tracking.application_name,
                tracking.notification_id,
                get_topic(type(domain_event)),
                label,
            )
        )

    def records(self) -> list[tuple[str, int, str]]:
        """(source, upstream notification id, label) of every Record, in order."""
        made = get_topic(Record.Made)
        notifications = self.recorder.select_notifications(
            None, 1_000_000, topics=[made]
        )
        events = self.mapper.to_domain_events(notifications)
        return [(e.source, e.notification_id, e.label) for e in events]


class Copier(Recording):
    pass


class Auditor(Recording):
    refused = ("boom", "unauditable")


class Tagged(Recording):
    """Follows only the Tagged events."""

    follow_topics = (get_topic(Item.Tagged),)


class PlainFollower(Follower[UUID]):
    """A follower that leads nothing (and so need not be a ProcessApplication)."""

    @singledispatchmethod
    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        processing_event.collect_events(
            Record(
                "Items",
                processing_event.tracking.notification_id,  # type: ignore[union-attr]
                get_topic(type(domain_event)),
                getattr(domain_event, "label", ""),
            )
        )


one_edge = System(pipes=[[Items, Copier]])
two_edges = System(pipes=[[Items, Copier, Auditor]])
fan_out = System(pipes=[[Items, Copier], [Items, Tagged]])
