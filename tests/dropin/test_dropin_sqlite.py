"""esox.dropin.sqlite passes eventsourcing 9.x's own reusable test cases.

Each test has its own database file in a temporary directory; the cases are
reached through their modules, so that pytest never collects the abstract
bases themselves. eventsourcing's SQLite recorders don't support
subscriptions; esox's do, so the optional subscription test runs too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, ClassVar
from unittest import TestCase
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.tests import application as es_application_tests
from eventsourcing.tests import persistence as es_tests
from eventsourcing.utils import Environment

from esox._core import SqliteDatabase
from esox.dropin.factory import EventStore
from esox.dropin.mapper import Mapper
from esox.dropin.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteFactory,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)


class WithSQLiteFile(TestCase):
    """A temporary directory for each test, and the databases opened in it."""

    originator_id_type: ClassVar[Any] = "uuid"

    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="esox-dropin-")
        self.databases: list[SqliteDatabase] = []
        super().setUp()

    def tearDown(self) -> None:
        for database in self.databases:
            database.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def database(self) -> SqliteDatabase:
        database = SqliteDatabase(os.path.join(self.tmp, f"{uuid4().hex}.sqlite"))
        self.databases.append(database)
        return database


class WithTextOriginatorIDs:
    originator_id_type = "text"

    def new_originator_id(self) -> UUID | str:
        return "test-" + str(uuid4())


class TestSQLiteAggregateRecorder(WithSQLiteFile, es_tests.AggregateRecorderTestCase):
    def create_recorder(self) -> SQLiteAggregateRecorder:
        recorder = SQLiteAggregateRecorder(
            self.database(), originator_id_type=self.originator_id_type
        )
        recorder.create_table()
        return recorder


class TestSQLiteAggregateRecorderWithTextOriginatorIDs(
    WithTextOriginatorIDs, TestSQLiteAggregateRecorder
):
    pass


class TestSQLiteApplicationRecorder(
    WithSQLiteFile, es_tests.ApplicationRecorderTestCase[SQLiteApplicationRecorder]
):
    def create_recorder(self) -> SQLiteApplicationRecorder:
        recorder = SQLiteApplicationRecorder(
            self.database(), originator_id_type=self.originator_id_type
        )
        recorder.create_table()
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestSQLiteApplicationRecorderWithTextOriginatorIDs(
    WithTextOriginatorIDs, TestSQLiteApplicationRecorder
):
    pass


class TestSQLiteTrackingRecorder(WithSQLiteFile, es_tests.TrackingRecorderTestCase):
    def create_recorder(self) -> SQLiteTrackingRecorder:
        recorder = SQLiteTrackingRecorder(self.database())
        recorder.create_table()
        return recorder


class TestSQLiteProcessRecorder(WithSQLiteFile, es_tests.ProcessRecorderTestCase):
    def create_recorder(self) -> SQLiteProcessRecorder:
        recorder = SQLiteProcessRecorder(
            self.database(), originator_id_type=self.originator_id_type
        )
        recorder.create_table()
        return recorder


class TestSQLiteProcessRecorderWithTextOriginatorIDs(
    WithTextOriginatorIDs, TestSQLiteProcessRecorder
):
    pass


class TestSQLiteNonInterleavingNotificationIDs(
    WithSQLiteFile, es_tests.NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> SQLiteApplicationRecorder:
        recorder = SQLiteApplicationRecorder(self.database())
        recorder.create_table()
        return recorder


class SQLiteTrackingRecorderSubclass(SQLiteTrackingRecorder):
    pass


class TestSQLiteInfrastructureFactory(
    es_tests.InfrastructureFactoryTestCase[SQLiteFactory]
):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="esox-dropin-")
        self.env = Environment("TestCase")
        self.env[InfrastructureFactory.PERSISTENCE_MODULE] = "esox.dropin.sqlite"
        self.env[SQLiteFactory.SQLITE_DBNAME] = os.path.join(self.tmp, "db.sqlite")
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def expected_factory_class(self) -> type[SQLiteFactory]:
        return SQLiteFactory

    def expected_aggregate_recorder_class(self) -> type[SQLiteAggregateRecorder]:
        return SQLiteAggregateRecorder

    def expected_application_recorder_class(self) -> type[SQLiteApplicationRecorder]:
        return SQLiteApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[SQLiteTrackingRecorder]:
        return SQLiteTrackingRecorder

    def tracking_recorder_subclass(self) -> type[SQLiteTrackingRecorder]:
        return SQLiteTrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[SQLiteProcessRecorder]:
        return SQLiteProcessRecorder

    def test_construct_raises_environment_error_when_dbname_missing(self) -> None:
        del self.env[SQLiteFactory.SQLITE_DBNAME]
        with self.assertRaises(EnvironmentError) as cm:
            InfrastructureFactory.construct(self.env)
        self.assertEqual(
            cm.exception.args[0],
            "SQLite database name not found in environment with keys: "
            "TESTCASE_SQLITE_DBNAME, SQLITE_DBNAME",
        )

    def test_environment_error_raised_when_lock_timeout_not_a_number(self) -> None:
        self.env[SQLiteFactory.SQLITE_LOCK_TIMEOUT] = "abc"
        with self.assertRaises(EnvironmentError):
            SQLiteFactory(self.env)

    def test_lock_timeout_value(self) -> None:
        self.env[SQLiteFactory.SQLITE_LOCK_TIMEOUT] = "10"
        factory = SQLiteFactory(self.env)
        self.assertEqual(factory.database.lock_timeout, 10)
        factory.close()

    def test_multi_row_tracking_is_refused(self) -> None:
        self.env[SQLiteFactory.SQLITE_SINGLE_ROW_TRACKING] = "f"
        with self.assertRaises(EnvironmentError):
            SQLiteFactory(self.env)

    def test_originator_id_type(self) -> None:
        factory = SQLiteFactory(self.env)
        self.assertEqual(factory.originator_id_type, "uuid")
        factory.close()
        self.env[SQLiteFactory.ORIGINATOR_ID_TYPE] = "text"
        factory = SQLiteFactory(self.env)
        self.assertEqual(factory.originator_id_type, "text")
        factory.close()
        self.env[SQLiteFactory.ORIGINATOR_ID_TYPE] = "int"
        with self.assertRaises(OSError) as cm:
            SQLiteFactory(self.env)
        self.assertIn("ORIGINATOR_ID_TYPE='int' is not valid", str(cm.exception))
        self.assertIn("uuid, text", str(cm.exception))


class WithSQLiteEnviron(TestCase):
    """Applications built with no env argument read os.environ: set it."""

    expected_factory_topic = "esox.dropin.sqlite:SQLiteFactory"

    def setUp(self) -> None:
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="esox-dropin-")
        self.saved_environ = dict(os.environ)
        os.environ["PERSISTENCE_MODULE"] = "esox.dropin.sqlite"
        os.environ["CREATE_TABLE"] = "y"
        os.environ["SQLITE_DBNAME"] = os.path.join(self.tmp, "app.sqlite")

    def tearDown(self) -> None:
        os.environ.clear()
        os.environ.update(self.saved_environ)
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def test_applications_use_the_dropin(self) -> None:
        app = Application[UUID]()
        self.assertIsInstance(app.factory, SQLiteFactory)
        self.assertIsInstance(app.mapper, Mapper)
        self.assertIsInstance(app.events, EventStore)


class TestApplicationWithSQLiteFile(
    WithSQLiteEnviron, es_application_tests.ApplicationTestCase
):
    pass


class TestExampleApplicationWithSQLiteFile(
    WithSQLiteEnviron, es_application_tests.ExampleApplicationTestCase
):
    pass
