"""What the PostgreSQL tests of this folder share: a fresh schema per test,
dropped afterwards, and factories over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from esox.postgres import PostgresFactory
from esox.utils import Environment
from tests.persistence_envs import POSTGRES, postgres_schema


@pytest.fixture
def schema() -> Iterator[str]:
    with postgres_schema() as name:
        yield name


@pytest.fixture
def make_factory(schema: str) -> Iterator[Callable[..., PostgresFactory]]:
    """Factories over the test's schema (closed afterwards): name, then env."""
    factories: list[PostgresFactory] = []

    def make(name: str = "Test", **env: str) -> PostgresFactory:
        settings = {**POSTGRES, "POSTGRES_SCHEMA": schema, **env}
        factory = PostgresFactory(Environment(name, settings))
        factories.append(factory)
        return factory

    yield make
    for factory in factories:
        factory.close()
