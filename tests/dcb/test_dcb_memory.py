"""The in-memory DCB recorder: eventsourcing 9.5's reusable DCB test case
(through the drop-in), its eventsourcing name, and its tag index (the
contract shared with SQLite is in test_dcb_recorders.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import eventsourcing.dcb.api as es_dcb
import eventsourcing.persistence as es
import pytest
from eventsourcing.dcb import tests as es_dcb_tests

from esox._core import StoredEvent
from esox.dcb import popo
from esox.dcb.api import DCBEvent, DCBQuery, DCBQueryItem
from esox.dcb.memory import InMemoryDCBRecorder
from esox.dropin import dcb as dropin_dcb
from esox.persistence import ProgrammingError


class TestDropinInMemoryDCBRecorder(es_dcb_tests.DCBRecorderTestCase):
    """eventsourcing's own case, on the recorder behind eventsourcing's interface."""

    def test_append_read(self) -> None:
        self._test_append_read(dropin_dcb.InMemoryDCBRecorder())

    def test_append_subscribe(self) -> None:
        self._test_append_subscribe(dropin_dcb.InMemoryDCBRecorder())

    def test_append_nothing_is_a_programming_error(self) -> None:
        with self.assertRaises(es.ProgrammingError):
            dropin_dcb.InMemoryDCBRecorder().append([])

    def test_reads_give_eventsourcing_objects(self) -> None:
        recorder = dropin_dcb.InMemoryDCBRecorder()
        recorder.append([es_dcb.DCBEvent(type="t", data=b"d", tags=["a"])])
        (sequenced,) = recorder.read()
        assert type(sequenced) is es_dcb.DCBSequencedEvent
        assert sequenced == es_dcb.DCBSequencedEvent(
            event=es_dcb.DCBEvent(type="t", data=b"d", tags=["a"]), position=1
        )


def query(*items: tuple[list[str], list[str]]) -> DCBQuery:
    return DCBQuery(items=[DCBQueryItem(types=t, tags=g) for t, g in items])


def event(type_: str = "T", *tags: str) -> DCBEvent:
    return DCBEvent(type=type_, data=b"", tags=list(tags))


def test_popo_is_eventsourcings_name_for_the_memory_recorder():
    assert popo.InMemoryDCBRecorder is InMemoryDCBRecorder


def test_a_read_by_tag_visits_only_the_positions_of_its_rarest_tag():
    recorder = InMemoryDCBRecorder()
    batch = [
        event("Booked", "common", "hot" if i % 100 == 0 else f"cold{i % 7}")
        for i in range(10_000)
    ]
    recorder.append(batch)
    before = recorder.positions_visited
    hot = recorder.read(query((["Booked"], ["common", "hot"])))
    assert [e.position for e in hot] == list(range(1, 10_001, 100))
    # 100 matching events, 100 positions looked at: not a scan of 10,000.
    assert recorder.positions_visited - before == 100
    before = recorder.positions_visited
    assert len(list(recorder.read(query(([], ["hot"])), after=5_000, limit=10))) == 10
    assert recorder.positions_visited - before == 10


def test_events_are_built_as_the_classes_given_without_calling_init():
    @dataclass
    class Event:
        type: str
        data: bytes
        tags: list[str]

        def __post_init__(self) -> None:
            raise AssertionError("__init__ is not called")

    @dataclass
    class Sequenced:
        event: Event
        position: int

    recorder = InMemoryDCBRecorder(event_class=Event, sequenced_event_class=Sequenced)
    recorder.append([event("A", "x")])
    (sequenced,) = recorder.read()
    assert type(sequenced) is Sequenced
    assert type(sequenced.event) is Event
    assert vars(sequenced.event) == {"type": "A", "data": b"", "tags": ["x"]}
    assert sequenced.position == 1


def test_abstract_event_classes_are_refused_when_built():
    class Abstract(ABC):
        @abstractmethod
        def f(self) -> None: ...

    recorder = InMemoryDCBRecorder(event_class=Abstract)
    recorder.append([event("A")])
    with pytest.raises(TypeError, match="abstract"):
        recorder.read()


class ExceptionEvent(Exception):
    """Has a __dict__, but its instances are BaseException's layout."""


class StoredEventSubclass(StoredEvent):
    """Has a __dict__, but its instances hold Rust fields."""


@pytest.mark.parametrize("cls", [ExceptionEvent, StoredEventSubclass])
def test_event_classes_that_object_new_cannot_make_are_refused(cls: type) -> None:
    # Built without object.__new__'s check, such an event had the base's
    # fields unset (NULL), and reading or collecting it crashed the process.
    refused = f"{cls.__qualname__} cannot be made by object.__new__"
    with pytest.raises(ProgrammingError, match=refused):
        InMemoryDCBRecorder(event_class=cls)
    with pytest.raises(ProgrammingError, match=refused):
        InMemoryDCBRecorder(sequenced_event_class=cls)


def test_event_classes_without_a_dict_are_refused():
    class Slotted:
        __slots__ = ("data", "tags", "type")

    with pytest.raises(ProgrammingError, match="Slotted has no __dict__"):
        InMemoryDCBRecorder(event_class=Slotted)
