"""esox.dropin.postgres passes eventsourcing 9.x's own reusable test cases.

Each test gets a fresh schema, dropped afterwards. Without a server the tests
skip, except under CI=true, where they fail (see persistence_envs). The cases
are reached through their modules, so that pytest never collects the
abstract bases themselves.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any, ClassVar
from unittest import TestCase
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.tests import application as es_application_tests
from eventsourcing.tests import persistence as es_tests
from eventsourcing.utils import Environment

from esox.dropin.factory import EventStore
from esox.dropin.mapper import Mapper
from esox.dropin.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresFactory,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from esox.postgres import PostgresDatastore
from tests.persistence_envs import POSTGRES, POSTGRES_CONNECT, postgres_schema


class WithPostgresSchema(TestCase):
    """A fresh schema for each test, and the datastores opened on it."""

    originator_id_type: ClassVar[Any] = "uuid"

    def setUp(self) -> None:
        self.stack = ExitStack()
        self.schema = self.stack.enter_context(postgres_schema())
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.stack.close()

    def datastore(self) -> PostgresDatastore:
        datastore = PostgresDatastore(
            **POSTGRES_CONNECT,
            schema=self.schema,
            originator_id_type=self.originator_id_type,
            pool_size=2,
        )
        # Closed before the schema is dropped (callbacks run last in, first out).
        self.stack.callback(datastore.close)
        return datastore


class WithTextOriginatorIDs:
    originator_id_type = "text"

    def new_originator_id(self) -> UUID | str:
        return "test-" + str(uuid4())


class TestPostgresAggregateRecorder(
    WithPostgresSchema, es_tests.AggregateRecorderTestCase
):
    def create_recorder(self) -> PostgresAggregateRecorder:
        recorder = PostgresAggregateRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestPostgresAggregateRecorderWithTextOriginatorIDs(
    WithTextOriginatorIDs, TestPostgresAggregateRecorder
):
    pass


class TestPostgresApplicationRecorder(
    WithPostgresSchema,
    es_tests.ApplicationRecorderTestCase[PostgresApplicationRecorder],
):
    def create_recorder(self) -> PostgresApplicationRecorder:
        recorder = PostgresApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestPostgresApplicationRecorderWithTextOriginatorIDs(
    WithTextOriginatorIDs, TestPostgresApplicationRecorder
):
    pass


class TestPostgresTrackingRecorder(
    WithPostgresSchema, es_tests.TrackingRecorderTestCase
):
    def create_recorder(self) -> PostgresTrackingRecorder:
        recorder = PostgresTrackingRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestPostgresProcessRecorder(WithPostgresSchema, es_tests.ProcessRecorderTestCase):
    def create_recorder(self) -> PostgresProcessRecorder:
        recorder = PostgresProcessRecorder(self.datastore())
        recorder.create_table()
        return recorder


class TestPostgresNonInterleavingNotificationIDs(
    WithPostgresSchema, es_tests.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> PostgresApplicationRecorder:
        recorder = PostgresApplicationRecorder(self.datastore())
        recorder.create_table()
        return recorder


class PostgresTrackingRecorderSubclass(PostgresTrackingRecorder):
    pass


class TestPostgresInfrastructureFactory(
    es_tests.InfrastructureFactoryTestCase[PostgresFactory]
):
    def setUp(self) -> None:
        self.stack = ExitStack()
        schema = self.stack.enter_context(postgres_schema())
        self.env = Environment("TestCase")
        self.env[InfrastructureFactory.PERSISTENCE_MODULE] = "esox.dropin.postgres"
        self.env.update(POSTGRES)
        self.env[PostgresFactory.POSTGRES_SCHEMA] = schema
        self.env["POSTGRES_POOL_SIZE"] = "2"
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.stack.close()

    def expected_factory_class(self) -> type[PostgresFactory]:
        return PostgresFactory

    def expected_aggregate_recorder_class(self) -> type[PostgresAggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(
        self,
    ) -> type[PostgresApplicationRecorder]:
        return PostgresApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[PostgresTrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[PostgresTrackingRecorder]:
        return PostgresTrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[PostgresProcessRecorder]:
        return PostgresProcessRecorder

    def test_environment_error_raised_when_dbname_missing(self) -> None:
        del self.env[PostgresFactory.POSTGRES_DBNAME]
        with self.assertRaises(EnvironmentError):
            PostgresFactory(self.env)

    def test_multi_row_tracking_is_refused(self) -> None:
        self.env[PostgresFactory.POSTGRES_SINGLE_ROW_TRACKING] = "f"
        with self.assertRaises(EnvironmentError):
            PostgresFactory(self.env)

    def test_tables_are_named_after_the_application(self) -> None:
        recorder = self.factory.application_recorder()
        assert isinstance(recorder, PostgresApplicationRecorder)
        self.assertEqual(recorder.events_table_name, "testcase_events")
        tracking = self.factory.tracking_recorder()
        self.assertEqual(tracking.tracking_table_name, "testcase_tracking")


class WithPostgresEnviron(TestCase):
    """Applications built with no env argument read os.environ: set it."""

    expected_factory_topic = "esox.dropin.postgres:PostgresFactory"

    def setUp(self) -> None:
        super().setUp()
        self.stack = ExitStack()
        schema = self.stack.enter_context(postgres_schema())
        self.saved_environ = dict(os.environ)
        os.environ.update(POSTGRES)
        os.environ["PERSISTENCE_MODULE"] = "esox.dropin.postgres"
        os.environ["POSTGRES_SCHEMA"] = schema
        os.environ["POSTGRES_POOL_SIZE"] = "2"

    def tearDown(self) -> None:
        os.environ.clear()
        os.environ.update(self.saved_environ)
        self.stack.close()
        super().tearDown()

    def test_applications_use_the_dropin(self) -> None:
        app = Application[UUID]()
        self.assertIsInstance(app.factory, PostgresFactory)
        self.assertIsInstance(app.mapper, Mapper)
        self.assertIsInstance(app.events, EventStore)


class TestApplicationWithPostgres(
    WithPostgresEnviron, es_application_tests.ApplicationTestCase
):
    pass


class TestExampleApplicationWithPostgres(
    WithPostgresEnviron, es_application_tests.ExampleApplicationTestCase
):
    pass
