"""esox.dropin.memory passes eventsourcing 9.x's own reusable test cases.

The cases are subclassed as eventsourcing's extension packages do; they are
reached through their modules, so that pytest never collects the abstract
bases themselves.
"""

from __future__ import annotations

import os
from typing import ClassVar
from unittest import TestCase
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.tests import application as es_application_tests
from eventsourcing.tests import persistence as es_tests
from eventsourcing.utils import Environment

from esox.dropin.factory import EventStore
from esox.dropin.mapper import Mapper
from esox.dropin.memory import (
    MemoryAggregateRecorder,
    MemoryApplicationRecorder,
    MemoryFactory,
    MemoryProcessRecorder,
    MemoryTrackingRecorder,
)


class TestMemoryAggregateRecorder(es_tests.AggregateRecorderTestCase):
    def create_recorder(self) -> MemoryAggregateRecorder:
        return MemoryAggregateRecorder()


class TestMemoryApplicationRecorder(
    es_tests.ApplicationRecorderTestCase[MemoryApplicationRecorder]
):
    def create_recorder(self) -> MemoryApplicationRecorder:
        return MemoryApplicationRecorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestMemoryTrackingRecorder(es_tests.TrackingRecorderTestCase):
    def create_recorder(self) -> MemoryTrackingRecorder:
        return MemoryTrackingRecorder()


class TestMemoryProcessRecorder(es_tests.ProcessRecorderTestCase):
    def create_recorder(self) -> MemoryProcessRecorder:
        return MemoryProcessRecorder()


class TestMemoryNonInterleavingNotificationIDs(
    es_tests.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> MemoryApplicationRecorder:
        return MemoryApplicationRecorder()


class MemoryTrackingRecorderSubclass(MemoryTrackingRecorder):
    pass


class TestMemoryInfrastructureFactory(
    es_tests.InfrastructureFactoryTestCase[MemoryFactory]
):
    def setUp(self) -> None:
        self.env = Environment("TestCase")
        self.env[InfrastructureFactory.PERSISTENCE_MODULE] = "esox.dropin.memory"
        super().setUp()

    def expected_factory_class(self) -> type[MemoryFactory]:
        return MemoryFactory

    def expected_aggregate_recorder_class(self) -> type[MemoryAggregateRecorder]:
        return MemoryAggregateRecorder

    def expected_application_recorder_class(self) -> type[MemoryApplicationRecorder]:
        return MemoryApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[MemoryTrackingRecorder]:
        return MemoryTrackingRecorder

    def tracking_recorder_subclass(self) -> type[MemoryTrackingRecorder]:
        return MemoryTrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[MemoryProcessRecorder]:
        return MemoryProcessRecorder


class WithMemory(TestCase):
    """Applications built with no env argument read os.environ: set it."""

    expected_factory_topic = "esox.dropin.memory:MemoryFactory"
    environ: ClassVar[dict[str, str]] = {"PERSISTENCE_MODULE": "esox.dropin.memory"}

    def setUp(self) -> None:
        super().setUp()
        self.saved_environ = dict(os.environ)
        os.environ.update(self.environ)

    def tearDown(self) -> None:
        os.environ.clear()
        os.environ.update(self.saved_environ)
        super().tearDown()

    def test_applications_use_the_dropin(self) -> None:
        app = Application[UUID]()
        self.assertIsInstance(app.factory, MemoryFactory)
        self.assertIsInstance(app.mapper, Mapper)
        self.assertIsInstance(app.events, EventStore)


class TestApplicationWithMemory(WithMemory, es_application_tests.ApplicationTestCase):
    pass


class TestExampleApplicationWithMemory(
    WithMemory, es_application_tests.ExampleApplicationTestCase
):
    pass
