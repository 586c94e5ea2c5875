"""Systems, followers, leaders, process applications and policies."""

from __future__ import annotations

import pickle
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from esox import Aggregate, Application, event
from esox.application import LocalNotificationLog, ProcessingEvent
from esox.persistence import IntegrityError, JSONTranscoder, Tracking, Transcoding
from esox.system import (
    EventProcessingError,
    Follower,
    Leader,
    NotificationPullingError,
    ProcessApplication,
    RecordingEvent,
    System,
    SystemDefinitionError,
    singledispatchmethod,
)
from esox.utils import get_topic
from tests.system_apps import (
    Auditor,
    Copier,
    Item,
    Items,
    PlainFollower,
    Tagged,
    fan_out,
    two_edges,
)

# System definitions.


def test_system_names_its_leaders_followers_processors_and_singles():
    system = System(pipes=[[Items, Copier, Auditor], [Items, Tagged], [PlainFollower]])
    assert system.names == ["Items", "Copier", "Auditor", "Tagged", "PlainFollower"]
    assert system.edges == [
        ("Items", "Copier"),
        ("Copier", "Auditor"),
        ("Items", "Tagged"),
    ]
    assert system.leaders == ["Items", "Copier"]
    assert system.leaders_only == ["Items"]
    assert system.followers == ["Copier", "Auditor", "Tagged"]
    assert system.processors == ["Copier"]
    assert system.singles == ["PlainFollower"]
    assert system.follows["Auditor"] == ["Copier"]
    assert system.leads["Items"] == ["Copier", "Tagged"]
    assert system.get_app_cls("Tagged") is Tagged
    assert system.nodes["Items"] == get_topic(Items)


def test_system_maps_known_names_without_edges_to_empty_lists():
    assert two_edges.follows["Items"] == []
    assert two_edges.leads["Auditor"] == []
    assert "Items" not in two_edges.follows


def test_system_names_the_applications_it_has_when_asked_for_another():
    with pytest.raises(KeyError, match=r"No application named 'Nope'.*'Items'"):
        two_edges.get_app_cls("Nope")
    with pytest.raises(KeyError, match="Nope"):
        two_edges.follows["Nope"]


def test_system_refuses_two_application_classes_with_one_name():
    class Copier(ProcessApplication[UUID]):  # same name as tests.system_apps.Copier
        pass

    with pytest.raises(
        SystemDefinitionError, match="Two applications are named 'Copier'"
    ):
        System(pipes=[[Items, Copier], [Items, globals()["Copier"]]])


def test_system_lets_a_process_application_follow_itself():
    # As eventsourcing allows: a process reacting to its own events.
    system = System(pipes=[[Items, Copier, Copier]])
    assert ("Copier", "Copier") in system.edges
    assert system.leaders_only == ["Items"]


def test_system_allows_empty_pipes_and_no_pipes():
    assert System(pipes=[[]]).names == []
    assert System(pipes=[]).names == []


@pytest.mark.parametrize(
    ("pipes", "message"),
    [
        ([Items, Copier], "Invalid pipe"),
        (Items, "Invalid pipes"),
        ([[Items, object]], "not an Application class"),
        ([[Items, "Copier"]], "not an Application class"),
    ],
)
def test_system_refuses_malformed_pipes(pipes: Any, message: str):
    with pytest.raises(SystemDefinitionError, match=message):
        System(pipes=pipes)


def test_system_requires_followers_to_be_followers():
    class Plain(Application[UUID]):
        pass

    with pytest.raises(TypeError, match=r"Not a follower class: <class .*Plain'>"):
        System(pipes=[[Items, Plain]])


def test_system_requires_followers_that_lead_to_be_process_applications():
    with pytest.raises(
        TypeError, match=r"Not a process application class: .*PlainFollower"
    ):
        System(pipes=[[Items, PlainFollower, Copier]])


def test_system_allows_cycles_of_process_applications():
    system = System(pipes=[[Items, Copier, Auditor, Copier]])
    assert system.follows["Copier"] == ["Items", "Auditor"]
    assert system.processors == ["Copier", "Auditor"]


def test_system_makes_plain_leaders_leaders():
    leader_cls = two_edges.leader_cls("Items")
    assert issubclass(leader_cls, Leader) and issubclass(leader_cls, Items)
    assert leader_cls.name == "Items"
    assert two_edges.leader_cls("Items") is leader_cls
    assert two_edges.leader_cls("Copier") is Copier


def test_system_topic_names_its_module_attribute():
    assert two_edges.topic == "tests.system_apps:two_edges"
    with pytest.raises(SystemDefinitionError, match="not a module attribute"):
        System(pipes=[[Items, Copier]]).topic


def test_system_can_be_pickled_for_child_processes():
    copy = pickle.loads(pickle.dumps(fan_out))
    assert copy.edges == fan_out.edges
    assert copy.follows["Tagged"] == ["Items"]
    assert copy.get_app_cls("Tagged") is Tagged


# Followers and leaders, wired by hand.


def wired(follower_cls: type[Any] = Copier, env: dict[str, str] | None = None) -> Any:
    leader = two_edges.leader_cls("Items")(env)
    follower = follower_cls(env)
    follower.follow("Items", leader.notification_log)
    return leader, follower


def test_follower_pulls_and_processes_each_notification_once():
    leader, follower = wired()
    leader.create("a")
    leader.create("b")
    follower.pull_and_process("Items")
    follower.pull_and_process("Items")
    assert follower.records() == [("Items", 1, "a"), ("Items", 2, "b")]
    assert follower.recorder.max_tracking_id("Items") == 2


def test_follower_pulls_between_start_and_stop():
    leader, follower = wired()
    leader.create_many(["a", "b", "c", "d"])
    follower.pull_and_process("Items", start=1, stop=3)
    assert [r[1] for r in follower.records()] == [2, 3]


def test_follower_resumes_from_its_recorded_position_after_a_restart(tmp_path: Path):
    env = {"PERSISTENCE_MODULE": "esox.sqlite"} | {
        f"{n.upper()}_SQLITE_DBNAME": str(tmp_path / f"{n}.db")
        for n in ("items", "copier")
    }
    leader, follower = wired(env=env)
    leader.create_many(["a", "b"])
    follower.pull_and_process("Items")
    follower.close()
    leader.create("c")
    follower = Copier(env)
    follower.follow("Items", leader.notification_log)
    follower.pull_and_process("Items")
    assert follower.records() == [
        ("Items", 1, "a"),
        ("Items", 2, "b"),
        ("Items", 3, "c"),
    ]
    follower.close()
    leader.close()


def test_leader_prompts_the_followers_it_leads_after_each_save():
    leader, follower = wired()
    leader.lead(follower)
    leader.create("a")
    leader.create_many(["b", "c"])
    assert follower.records() == [
        ("Items", 1, "a"),
        ("Items", 2, "b"),
        ("Items", 3, "c"),
    ]
    assert leader.previous_max_notification_id == 3


def test_follower_pulls_the_notifications_a_prompt_skipped():
    leader, follower = wired()
    leader.create_many(["a", "b"])  # nobody prompted
    leader.lead(follower)
    leader.create("c")
    assert [r[1] for r in follower.records()] == [1, 2, 3]


def test_follower_passes_over_prompts_it_has_processed_already():
    leader, follower = wired()
    prompts: list[RecordingEvent[Any]] = []
    leader.lead(type("Catcher", (), {"receive_recording_event": prompts.append})())
    leader.create("a")
    leader.create("b")
    follower.process_recording_event(prompts[1])
    follower.process_recording_event(prompts[0])
    follower.process_recording_event(prompts[1])
    assert [r[1] for r in follower.records()] == [1, 2]


def test_follower_processes_only_its_topics_from_prompts_and_pulls():
    leader, follower = wired(Tagged)
    a = leader.create("a")
    leader.tag(a, "x")
    follower.pull_and_process("Items")
    leader.lead(follower)
    leader.create("b")
    leader.tag(a, "y")
    assert follower.records() == [("Items", 2, "x"), ("Items", 4, "y")]
    assert follower.topics == (get_topic(Item.Tagged),)


def test_failed_policy_records_nothing_and_keeps_the_position():
    leader, follower = wired()
    leader.create_many(["a", "boom", "c"])
    with pytest.raises(EventProcessingError) as info:
        follower.pull_and_process("Items")
    message = str(info.value)
    assert "Copier failed to process notification 2 of 'Items'" in message
    assert "tests.system_apps:Item.Created" in message and "policy refused" in message
    assert isinstance(info.value.__cause__, ValueError)
    assert follower.records() == [("Items", 1, "a")]
    assert follower.recorder.max_tracking_id("Items") == 1


def test_processing_an_event_twice_is_refused_by_the_tracking_record():
    leader, follower = wired()
    leader.create("a")
    follower.pull_and_process("Items")
    notification = leader.notification_log.select(1, 1)[0]
    domain_event = leader.mapper.to_domain_event(notification)
    with pytest.raises(IntegrityError):
        follower.process_event(domain_event, Tracking("Items", 1))
    assert len(follower.records()) == 1


def test_follower_that_follows_nothing_says_what_to_do():
    follower = Copier()
    with pytest.raises(NotificationPullingError, match=r"call follow\('Items'"):
        follower.pull_and_process("Items")


def test_follower_reads_logs_in_batches_no_bigger_than_their_sections():
    leader, follower = wired()
    assert (
        follower.readers["Items"].section_size == leader.notification_log.section_size
    )
    follower.follow("Items", LocalNotificationLog(leader.recorder, section_size=500))
    assert follower.readers["Items"].section_size == follower.pull_section_size


# Policies.


class Money:
    def __init__(self, amount: Decimal) -> None:
        self.amount = amount


class MoneyAsStr(Transcoding):
    type = Money
    name = "money"

    def encode(self, obj: Money) -> str:
        return str(obj.amount)

    def decode(self, data: str) -> Money:
        return Money(Decimal(data))


class Till(Aggregate):
    @event("Opened")
    def __init__(self) -> None:
        self.total = Decimal(0)

    @event("Paid")
    def pay(self, money: Money) -> None:
        self.total += money.amount


class Shop(Application[UUID]):
    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        transcoder.register(MoneyAsStr())

    def pay(self, amount: str) -> None:
        till = Till()
        till.pay(Money(Decimal(amount)))
        self.save(till)


class Accounting(ProcessApplication[UUID]):
    """Registers its policies by annotations naming classes defined later."""

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        transcoder.register(MoneyAsStr())

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self.seen: list[str] = []

    @singledispatchmethod
    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        self.seen.append("other")

    @policy.register
    def _(
        self, domain_event: LaterTill.Paid, processing_event: ProcessingEvent[UUID]
    ) -> None:
        self.seen.append(f"paid {domain_event.money.amount}")


class LaterTill(Aggregate):
    @event("Opened")
    def __init__(self) -> None:
        self.total = Decimal(0)

    @event("Paid")
    def pay(self, money: Money) -> None:
        self.total += money.amount


class LaterShop(Shop):
    def pay(self, amount: str) -> None:
        till = LaterTill()
        till.pay(Money(Decimal(amount)))
        self.save(till)


def test_policy_dispatches_on_event_types_named_before_they_are_defined():
    shop = System(pipes=[[LaterShop, Accounting]]).leader_cls("LaterShop")()
    accounting = Accounting()
    accounting.follow("LaterShop", shop.notification_log)
    shop.pay("2.50")
    accounting.pull_and_process("LaterShop")
    assert accounting.seen == ["other", "paid 2.50"]


def test_policy_registered_by_explicit_type():
    class Explicit(ProcessApplication[UUID]):
        @singledispatchmethod
        def policy(self, domain_event: Any, processing_event: Any) -> None:
            pass

        @policy.register(Item.Created)
        def _(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
            processing_event.collect_events(Item(domain_event.label.upper()))

    leader = two_edges.leader_cls("Items")()
    follower = Explicit()
    follower.follow("Items", leader.notification_log)
    leader.create("a")
    follower.pull_and_process("Items")
    assert follower.notification_log.select(1, 10)[0].topic == get_topic(Item.Created)


def test_follower_decodes_upstream_events_with_its_own_transcodings():
    class Forgetful(ProcessApplication[UUID]):
        pass

    shop = Shop()
    follower = Forgetful()
    follower.follow("Shop", shop.notification_log)
    shop.pay("1.00")
    with pytest.raises(EventProcessingError, match="transcodings registered here"):
        follower.pull_and_process("Shop")


def test_follower_decodes_with_the_upstreams_codec_settings():
    env = {"SHOP_COMPRESSOR_TOPIC": "zlib"}
    shop = Shop(env)
    accounting = Accounting(env)
    assert accounting.mapper.compressor is None
    accounting.follow("Shop", shop.notification_log)
    assert accounting.mappers["Shop"].compressor is not None
    shop.pay("3.00")
    accounting.pull_and_process("Shop")
    assert accounting.seen == ["other", "other"]


def test_follow_topics_is_another_name_for_topics():
    assert Tagged.topics == Tagged.follow_topics
    assert Copier.topics == ()


def test_plain_follower_can_end_a_pipe():
    leader, follower = wired(PlainFollower)
    leader.lead(follower)
    leader.create("a")
    assert follower.recorder.max_tracking_id("Items") == 1
    assert isinstance(follower, Follower) and not isinstance(follower, Leader)


def test_follower_whose_prompt_to_its_own_follower_fails_is_not_stuck():
    items = two_edges.leader_cls("Items")()
    copier, auditor = Copier(), Auditor()
    copier.follow("Items", items.notification_log)
    auditor.follow("Copier", copier.notification_log)
    items.lead(copier)
    copier.lead(auditor)
    items.create("a")
    with pytest.raises(EventProcessingError, match="Auditor failed"):
        items.create("unauditable")
    assert labels(copier.records()) == ["a", "unauditable"]  # before the prompt
    with pytest.raises(EventProcessingError, match="Auditor failed"):
        items.create("c")  # the copier carries on; the auditor is stuck
    assert labels(copier.records()) == ["a", "unauditable", "c"]
    assert labels(auditor.records()) == ["a"]


def labels(records: list[tuple[str, int, str]]) -> list[str]:
    return [label for _, _, label in records]


def test_follower_pulls_what_a_leader_left_out_of_its_prompts():
    class Selective(Leader[UUID], Items):
        name = "Items"
        notify_topics = (get_topic(Item.Created),)

    leader = Selective()
    follower = Copier()
    follower.follow("Items", leader.notification_log)
    leader.lead(follower)
    item_id = leader.create("a")
    item: Any = leader.repository.get(item_id)
    item.tag("t")
    leader.save(Item("b"), item, Item("c"))  # the prompt has #2 and #4, not #3
    assert labels(follower.records()) == ["a", "b", "t", "c"]


def test_pulling_again_from_an_earlier_position_raises_the_integrity_error():
    # As eventsourcing's pull_and_process does: the tracking record refuses
    # the second processing, and that error is raised as it is.
    leader, follower = wired()
    leader.create("a")
    follower.pull_and_process("Items")
    with pytest.raises(IntegrityError) as info:
        follower.pull_and_process("Items", start=0)
    assert any("notification 1 of 'Items'" in note for note in info.value.__notes__)
    assert follower.recorder.max_tracking_id("Items") == 1
