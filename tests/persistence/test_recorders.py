"""The recorder contract (esox.testing) on every persistence module: memory,
SQLite file, SQLite :memory: and PostgreSQL. Each backend's own test module
keeps only what is particular to it."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from contextlib import ExitStack

from esox.persistence import InfrastructureFactory
from esox.testing import (
    AggregateRecorderCases,
    ApplicationRecorderCases,
    InfrastructureFactoryCases,
    ProcessRecorderCases,
    TrackingRecorderCases,
    TranscoderCases,
)
from esox.utils import Environment
from tests.persistence_envs import POSTGRES, postgres_schema


class Memory:
    def create_factory(self) -> InfrastructureFactory:
        env = {"PERSISTENCE_MODULE": "esox.memory"}
        return InfrastructureFactory.construct(Environment("testapp", env))


class SQLiteFile:
    def setup_method(self) -> None:
        super().setup_method()  # type: ignore[misc]
        self.tmp = tempfile.mkdtemp()

    def teardown_method(self) -> None:
        super().teardown_method()  # type: ignore[misc]
        shutil.rmtree(self.tmp)

    def create_factory(self) -> InfrastructureFactory:
        env = {
            "PERSISTENCE_MODULE": "esox.sqlite",
            "SQLITE_DBNAME": f"{self.tmp}/{uuid.uuid4().hex}.sqlite",
        }
        return InfrastructureFactory.construct(Environment("testapp", env))


class SQLiteInMemory:
    def create_factory(self) -> InfrastructureFactory:
        env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": ":memory:"}
        return InfrastructureFactory.construct(Environment("testapp", env))


class Postgres:
    def setup_method(self) -> None:
        super().setup_method()  # type: ignore[misc]
        self.stack = ExitStack()
        self.schema = self.stack.enter_context(postgres_schema())

    def teardown_method(self) -> None:
        super().teardown_method()  # type: ignore[misc]
        self.stack.close()

    def create_factory(self) -> InfrastructureFactory:
        env = {
            "PERSISTENCE_MODULE": "esox.postgres",
            "POSTGRES_SCHEMA": self.schema,
            **POSTGRES,
        }
        return InfrastructureFactory.construct(Environment("testapp", env))


class TestMemoryAggregateRecorder(Memory, AggregateRecorderCases):
    pass


class TestMemoryApplicationRecorder(Memory, ApplicationRecorderCases):
    pass


class TestMemoryTrackingRecorder(Memory, TrackingRecorderCases):
    pass


class TestMemoryProcessRecorder(Memory, ProcessRecorderCases):
    pass


class TestMemoryFactory(Memory, InfrastructureFactoryCases):
    pass


class TestSQLiteFileAggregateRecorder(SQLiteFile, AggregateRecorderCases):
    pass


class TestSQLiteFileApplicationRecorder(SQLiteFile, ApplicationRecorderCases):
    pass


class TestSQLiteFileTrackingRecorder(SQLiteFile, TrackingRecorderCases):
    pass


class TestSQLiteFileProcessRecorder(SQLiteFile, ProcessRecorderCases):
    pass


class TestSQLiteFileFactory(SQLiteFile, InfrastructureFactoryCases):
    pass


class TestSQLiteInMemoryAggregateRecorder(SQLiteInMemory, AggregateRecorderCases):
    pass


class TestSQLiteInMemoryApplicationRecorder(SQLiteInMemory, ApplicationRecorderCases):
    pass


class TestSQLiteInMemoryTrackingRecorder(SQLiteInMemory, TrackingRecorderCases):
    pass


class TestSQLiteInMemoryFactory(SQLiteInMemory, InfrastructureFactoryCases):
    pass


class TestSQLiteInMemoryProcessRecorder(SQLiteInMemory, ProcessRecorderCases):
    pass


class TestPostgresAggregateRecorder(Postgres, AggregateRecorderCases):
    pass


class TestPostgresApplicationRecorder(Postgres, ApplicationRecorderCases):
    pass


class TestPostgresTrackingRecorder(Postgres, TrackingRecorderCases):
    pass


class TestPostgresProcessRecorder(Postgres, ProcessRecorderCases):
    pass


class TestPostgresFactory(Postgres, InfrastructureFactoryCases):
    pass


class TestJSONTranscoder(TranscoderCases):
    pass
