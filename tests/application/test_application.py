"""The application: save, get, snapshots, notification log, configuration."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from esox import Aggregate, AggregateNotFoundError, Application, BaseAggregate, event
from esox.application import LocalNotificationLog, Section
from esox.persistence import (
    InfrastructureFactoryError,
    IntegrityError,
    JSONTranscoder,
    StoredEvent,
)
from tests.values import Money, MoneyAsDict


class Account(Aggregate):
    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = Money(Decimal("0.00"), "EUR")

    @event("Credited")
    def credit(self, money: Money) -> None:
        self.balance = Money(self.balance.amount + money.amount, money.currency)


class Bank(Application[UUID]):
    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(MoneyAsDict())


def test_save_and_get_reconstructs_aggregate_with_custom_types():
    bank = Bank()
    account = Account("alice")
    account.credit(Money(Decimal("10.50"), "EUR"))
    account.credit(Money(Decimal("1.25"), "EUR"))
    recordings = bank.save(account)
    assert [r.notification.id for r in recordings] == [1, 2, 3]
    copy = bank.repository.get(account.id)
    assert copy == account
    assert copy.balance == Money(Decimal("11.75"), "EUR")
    assert isinstance(copy.balance, Money)


def test_get_at_version_and_not_found():
    bank = Bank()
    account = Account("alice")
    account.credit(Money(Decimal("1"), "EUR"))
    bank.save(account)
    assert bank.repository.get(account.id, version=1).version == 1
    assert bank.repository.get(account.id, version=1).balance.amount == 0
    missing = uuid4()
    with pytest.raises(AggregateNotFoundError, match=str(missing)):
        bank.repository.get(missing)
    assert account.id in bank.repository
    assert missing not in bank.repository


def test_concurrent_change_to_same_version_is_refused_and_nothing_is_lost():
    bank = Bank()
    account = Account("alice")
    bank.save(account)
    first = bank.repository.get(account.id)
    second = bank.repository.get(account.id)
    first.credit(Money(Decimal("1"), "EUR"))
    second.credit(Money(Decimal("2"), "EUR"))
    bank.save(first)
    with pytest.raises(IntegrityError):
        bank.save(second)
    assert bank.repository.get(account.id).balance.amount == Decimal("1")


def test_save_of_several_aggregates_is_one_atomic_batch():
    bank = Bank()
    a, b = Account("a"), Account("b")
    bank.save(a)
    stale = bank.repository.get(a.id)
    a.credit(Money(Decimal("1"), "EUR"))
    bank.save(a)
    stale.credit(Money(Decimal("5"), "EUR"))
    with pytest.raises(IntegrityError):
        bank.save(b, stale)
    assert b.id not in bank.repository
    assert bank.recorder.max_notification_id() == 2


def test_notification_log_sections_and_selection():
    bank = Bank()
    accounts = [Account(f"owner{i}") for i in range(13)]
    bank.save(*accounts)
    log = bank.notification_log
    assert isinstance(log, LocalNotificationLog)
    first = log["1,10"]
    assert isinstance(first, Section)
    assert first.id == "1,10" and first.next_id == "11,20"
    assert [n.id for n in first.items] == list(range(1, 11))
    second = log[first.next_id]
    assert second.id == "11,13" and second.next_id is None
    assert log["20,30"] == Section(id=None, items=[], next_id=None)
    assert [n.id for n in log.select(start=5, limit=3)] == [5, 6, 7]
    assert [n.id for n in log.select(start=5, limit=3, stop=6)] == [5, 6]
    with pytest.raises(ValueError, match="greater than section size"):
        log.select(start=1, limit=11)
    with pytest.raises(ValueError, match="Invalid section id"):
        log["1-10"]
    topic = bank.notification_log.select(1, 1)[0].topic
    assert topic.endswith(":Account.Opened")
    assert len(log.select(start=1, limit=10, topics=[topic])) == 10


def test_take_snapshot_and_get_from_snapshot():
    bank = Bank(env={"IS_SNAPSHOTTING_ENABLED": "y"})
    account = Account("alice")
    for _ in range(5):
        account.credit(Money(Decimal("1"), "EUR"))
    bank.save(account)
    bank.take_snapshot(account.id, version=4)
    assert bank.snapshots is not None
    (snapshot,) = bank.snapshots.get(account.id)
    assert snapshot.originator_version == 4
    assert isinstance(snapshot.state["balance"], Money)
    assert bank.repository.get(account.id) == account
    assert bank.repository.get(account.id, version=4).balance.amount == 3
    assert bank.repository.get(account.id, version=2).balance.amount == 1


def test_automatic_snapshots_every_interval():
    class SnappyBank(Bank):
        snapshotting_intervals = {Account: 3}

    bank = SnappyBank()
    account = Account("alice")
    bank.save(account)
    for _ in range(7):
        account.credit(Money(Decimal("1"), "EUR"))
        bank.save(account)
    assert bank.snapshots is not None
    versions = [s.originator_version for s in bank.snapshots.get(account.id)]
    assert versions == [3, 6]
    assert bank.repository.get(account.id) == account


def test_take_snapshot_without_snapshot_store_is_a_clear_error():
    bank = Bank()
    assert bank.snapshots is None
    with pytest.raises(AssertionError, match="IS_SNAPSHOTTING_ENABLED"):
        bank.take_snapshot(uuid4())


class Gadget(Aggregate):
    @event("Made")
    def __init__(self, name: str, colour: str) -> None:
        self.name = name
        self.colour = colour


Gadget.Made.class_version = 2  # type: ignore[attr-defined]


def _upcast_made_v1_v2(state: dict[str, Any]) -> None:
    state["colour"] = "black"


Gadget.Made.upcast_v1_v2 = staticmethod(_upcast_made_v1_v2)  # type: ignore[attr-defined]


def test_events_stored_by_an_old_class_version_are_upcast_on_read():
    bank = Bank()
    gadget = Gadget("phone", "red")
    (made,) = gadget.collect_events()
    (stored,) = bank.mapper.to_stored_events([made])
    assert b'"class_version":2' in stored.state
    # The same event as version 1 of the class stored it: no colour, no version.
    old_state = stored.state.replace(b',"colour":"red","class_version":2', b"")
    assert b"colour" not in old_state
    old = StoredEvent(stored.originator_id, 1, stored.topic, old_state)
    bank.recorder.insert_events([old])
    restored = bank.repository.get(gadget.id)
    assert restored.name == "phone"
    assert restored.colour == "black"


def test_string_ids():
    class Ticket(BaseAggregate[str]):
        @event("Opened")
        def __init__(self, title: str) -> None:
            self.title = title

    class Desk(Application[str]):
        pass

    desk = Desk(env={"ORIGINATOR_ID_TYPE": "text"})
    desk.save(Ticket(id="T-1", title="bug"))
    assert desk.repository.get("T-1").title == "bug"


def test_env_precedence_and_application_name_prefix(monkeypatch: pytest.MonkeyPatch):
    class Shop(Application[UUID]):
        env = {"AGGREGATE_CACHE_MAXSIZE": "10", "X": "class"}

    monkeypatch.setenv("X", "process")
    monkeypatch.setenv("SHOP_Y", "prefixed")
    monkeypatch.setenv("Y", "plain")
    shop = Shop(env={"Z": "given"})
    assert shop.name == "Shop"
    assert shop.env.get("X") == "process"
    assert shop.env.get("Y") == "prefixed"
    assert shop.env.get("Z") == "given"
    assert Shop(env={"X": "given"}).env.get("X") == "given"


def test_bad_persistence_module_is_a_clear_error():
    with pytest.raises(InfrastructureFactoryError, match=r"no\.such\.module"):
        Bank(env={"PERSISTENCE_MODULE": "no.such.module"})
    with pytest.raises(InfrastructureFactoryError, match="expected 1"):
        Bank(env={"PERSISTENCE_MODULE": "esox.domain"})


def test_eventsourcing_persistence_module_names_are_understood():
    bank = Bank(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    assert type(bank.factory).__module__ == "esox.memory"


def test_application_is_a_context_manager():
    with Bank() as bank:
        bank.save(Account("a"))
        assert bank.recorder.max_notification_id() == 1


def test_snapshots_of_string_id_aggregates_keep_string_ids(tmp_path):
    class Note(BaseAggregate[str]):
        @event("Written")
        def __init__(self, text: str) -> None:
            self.text = text

    class Notes(Application[str]):
        pass

    env = {
        "PERSISTENCE_MODULE": "esox.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "notes.db"),
        "ORIGINATOR_ID_TYPE": "text",
        "IS_SNAPSHOTTING_ENABLED": "y",
    }
    with Notes(env=env) as notes:
        note_id = "6a0d2f6e-8a55-4b3e-9d5c-3c1f0a6b7e21"  # looks like a UUID
        notes.save(Note(id=note_id, text="hi"))
        notes.take_snapshot(note_id)
        assert notes.snapshots is not None
        (snapshot,) = notes.snapshots.get(note_id)
        assert snapshot.originator_id == note_id
        assert notes.repository.get(note_id).id == note_id


def test_save_returns_recordings_pairing_each_event_with_its_notification():
    import gc
    import pickle
    import weakref
    from unittest.mock import ANY

    from esox.persistence import Notification, Recording
    from esox.persistence.eventstore import recordings

    bank = Bank()
    a, b = Account("a"), Account("b")
    events = [*a.pending_events, *b.pending_events]
    saved = bank.save(a, b)
    assert [r.domain_event for r in saved] == events
    assert [r.notification.id for r in saved] == [1, 2]
    stored = bank.recorder.select_notifications(1, 10)
    assert [r.notification for r in saved] == stored
    first = saved[0]
    assert first == Recording(events[0], stored[0]) and first != saved[1]
    assert hash(first) == hash(Recording(events[0], stored[0]))
    assert pickle.loads(pickle.dumps(first)) == first
    assert repr(first).startswith("Recording(domain_event=")
    assert Recording[UUID] is not None  # generic, as eventsourcing's
    assert first != (first.domain_event, first.notification)
    assert first == ANY  # NotImplemented for other classes: theirs decides
    match first:
        case Recording(event, notification):
            assert (event, notification) == (events[0], stored[0])
    note = Notification(a.id, 1, "t", b"{}", 7)
    with pytest.raises(ValueError, match="2 domain events, 1 stored events"):
        recordings(events, [note], [7])
    # Notifications (ids, text, bytes) are left to reference counting; a
    # recording is seen by the cycle collector, so a cycle through it goes.
    assert not gc.is_tracked(first.notification) and gc.is_tracked(first)
    event = events[0]
    ref = weakref.ref(event)
    object.__setattr__(event, "recording", Recording(event, stored[0]))
    del event, events, saved, first
    gc.collect()
    assert ref() is None


def test_processing_event_aggregates_by_id_keep_the_last_collected():
    from esox.application import ProcessingEvent

    a, b, c = Account("a"), Account("b"), Account("c")
    copy = Account("d")
    copy._id = a.id  # a second object of the same aggregate
    processing_event: ProcessingEvent[UUID] = ProcessingEvent()
    processing_event.collect_events(a, None, copy, something="kept")
    assert processing_event.aggregates == {a.id: copy}
    assert len(processing_event.events) == 2
    assert processing_event.saved_kwargs == {"something": "kept"}
    # A dict as eventsourcing's: what is put in it stays, later collections
    # update it, and it can be replaced.
    processing_event.aggregates[b.id] = b
    processing_event.collect_events(c)
    assert processing_event.aggregates == {a.id: copy, b.id: b, c.id: c}
    processing_event.aggregates = {c.id: c}
    assert processing_event.aggregates == {c.id: c}


def test_saved_aggregates_are_cached_once_each():
    bank = Bank(env={"AGGREGATE_CACHE_MAXSIZE": "10"})
    a = Account("a")
    bank.save(a, a)
    cached = bank.repository.get(a.id)
    assert cached == a and cached is not a


def test_settings_are_what_an_application_of_the_class_would_read(monkeypatch):
    class Upstream(Application):
        env = {"SQLITE_DBNAME": "class.db", "PERSISTENCE_MODULE": "esox.sqlite"}
        snapshotting_intervals = {}

    monkeypatch.setenv("UPSTREAM_SQLITE_DBNAME", "environ.db")
    settings = Upstream.settings({"PERSISTENCE_MODULE": "esox.memory"})
    assert settings.name == "Upstream"
    assert settings.get("SQLITE_DBNAME") == "environ.db"  # prefixed wins
    assert settings.get("PERSISTENCE_MODULE") == "esox.memory"  # given wins
    app = Upstream(env={"PERSISTENCE_MODULE": "esox.memory"})
    assert dict(app.env) == dict(settings)
    assert Upstream.settings(name="Other").name == "Other"
