"""Persistence behaviour that code written for eventsourcing relies on."""

from __future__ import annotations

from uuid import uuid4

import pytest

from esox.memory import MemoryAggregateRecorder, MemoryApplicationRecorder
from esox.persistence import (
    AESCipher,
    CipherKeyError,
    InfrastructureFactory,
    InfrastructureFactoryError,
    StoredEvent,
)
from esox.sqlite import SQLiteTrackingRecorder
from esox.utils import Environment, get_topic


class MyTrackingRecorder(SQLiteTrackingRecorder):
    pass


def stored(version: int = 1) -> StoredEvent:
    return StoredEvent(uuid4(), version, "topic", b"state")


def test_an_aggregate_recorder_numbers_no_notifications() -> None:
    assert MemoryAggregateRecorder().insert_events([stored()]) is None
    assert MemoryApplicationRecorder().insert_events([stored()]) == [1]


def test_a_stopped_subscription_yields_nothing_more() -> None:
    recorder = MemoryApplicationRecorder()
    recorder.insert_events([stored(), stored(), stored()])
    seen = []
    with recorder.subscribe(gt=0) as subscription:
        for notification in subscription:
            seen.append(notification.id)
            subscription.stop()
    assert seen == [1]


def test_a_missing_cipher_key_is_an_environment_error() -> None:
    with pytest.raises(EnvironmentError, match="CIPHER_KEY is not set"):
        AESCipher(Environment())
    assert issubclass(CipherKeyError, ValueError)


def test_tracking_recorder_topic_names_the_tracking_recorder_class() -> None:
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": ":memory:"}
    env["TRACKING_RECORDER_TOPIC"] = get_topic(MyTrackingRecorder)
    with InfrastructureFactory.construct(env) as factory:
        assert type(factory.tracking_recorder()) is MyTrackingRecorder
    env["TRACKING_RECORDER_TOPIC"] = get_topic(MemoryAggregateRecorder)
    with (
        InfrastructureFactory.construct(env) as factory,
        pytest.raises(InfrastructureFactoryError, match="not a subclass"),
    ):
        factory.tracking_recorder()
