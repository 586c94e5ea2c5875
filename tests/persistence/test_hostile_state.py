"""Hostile stored bytes: rows written by anyone with access to the events table
(or served by a remote-log upstream) must fail cleanly, never exhaust memory,
close a descriptor, import a module or build an object that is not an event."""

from __future__ import annotations

import base64
import contextlib
import gc
import os
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from esox import _core
from esox.persistence import InfrastructureFactory, StoredEvent
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import (
    DEFAULT_MAX_STATE_SIZE,
    ZlibCompressor,
    ZstdCompressor,
)
from esox.persistence.errors import (
    InfrastructureFactoryError,
    MapperDeserialisationError,
    TranscodingNotRegisteredError,
)
from esox.persistence.transcoding import JSONTranscoder
from tests.system_apps import Item, Items

KEY = base64.b64encode(bytes(range(32))).decode()


@dataclass(frozen=True)
class Deposited:
    originator_id: UUID
    originator_version: int
    amount: int


@dataclass(frozen=True)
class Withdrawn:
    originator_id: UUID
    originator_version: int
    amount: int


TOPIC = f"{__name__}:Deposited"


def mapper(**kwargs: Any) -> _core.Mapper:
    return _core.Mapper(JSONTranscoder(), **kwargs)


def zstd_frame_declaring(size: int, body: bytes = b"x") -> bytes:
    """A zstd frame whose header declares ``size`` bytes but holds an RLE block."""
    header = b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + struct.pack("<Q", size)
    block = (1 | (1 << 1) | (len(body) << 3)).to_bytes(3, "little")
    return header + block + body[:1]


# 1. Decompression is bounded.


def test_a_zstd_frame_declaring_a_huge_size_is_refused_without_allocating_it() -> None:
    m = mapper(compressor=ZstdCompressor())
    originator_id = uuid4()
    forged = StoredEvent(originator_id, 7, TOPIC, zstd_frame_declaring(30 << 30))
    with pytest.raises(MapperDeserialisationError) as info:
        m.to_domain_event(forged)
    message = str(info.value)
    assert str(originator_id) in message
    assert "originator_version 7" in message
    assert TOPIC in message
    assert "MAX_STATE_SIZE" in message


def test_a_big_zstd_frame_declaring_a_huge_size_is_refused_too() -> None:
    # About 1 MiB of frame declaring 30 GiB: once made esox allocate 30 GiB.
    frame = zstd_frame_declaring(30 << 30) + os.urandom(1 << 20)
    with pytest.raises(MapperDeserialisationError, match="MAX_STATE_SIZE"):
        mapper(compressor=ZstdCompressor()).to_domain_event(
            StoredEvent(uuid4(), 1, TOPIC, frame)
        )


@pytest.mark.parametrize(
    ("codec", "compress"),
    [
        (ZlibCompressor, zlib.compress),
        (ZstdCompressor, lambda data: _core.zstd_compress(data)),
    ],
)
def test_a_real_bomb_just_over_the_limit_is_refused_and_one_at_it_reads(
    codec: type[ZlibCompressor] | type[ZstdCompressor], compress: Any
) -> None:
    limit = 1 << 20
    m = mapper(compressor=codec(max_size=limit))
    at_limit = b'{"amount":1,"pad":"' + b"a" * (limit - 30)
    at_limit += b" " * (limit - len(at_limit) - 2) + b'"}'
    assert len(at_limit) == limit
    event = m.to_domain_event(StoredEvent(uuid4(), 1, TOPIC, compress(at_limit)))
    assert event.amount == 1
    bomb = compress(at_limit + b" ")
    assert len(bomb) < limit // 100
    with pytest.raises(MapperDeserialisationError, match="more than 1048576 bytes"):
        m.to_domain_event(StoredEvent(uuid4(), 1, TOPIC, bomb))
    with pytest.raises(MapperDeserialisationError, match="MAX_STATE_SIZE"):
        codec(max_size=limit).decompress(bomb)


def test_max_state_size_comes_from_the_environment() -> None:
    env = {"COMPRESSOR_TOPIC": "zlib", "MAX_STATE_SIZE": "1000"}
    factory = InfrastructureFactory.construct(env)
    m = factory.mapper()
    assert m.compressor.max_size == 1000
    assert InfrastructureFactory.construct({"COMPRESSOR_TOPIC": "zstd"}).mapper()
    default = InfrastructureFactory.construct({"COMPRESSOR_TOPIC": "zstd"}).mapper()
    assert default.compressor.max_size == DEFAULT_MAX_STATE_SIZE
    with pytest.raises(MapperDeserialisationError, match="more than 1000 bytes"):
        m.to_domain_event(StoredEvent(uuid4(), 1, TOPIC, zlib.compress(b" " * 1001)))
    for bad in ("abc", "0", "-5", "1e9"):
        with pytest.raises(InfrastructureFactoryError, match="MAX_STATE_SIZE"):
            InfrastructureFactory.construct(env | {"MAX_STATE_SIZE": bad}).mapper()


def test_a_bomb_in_a_batch_names_its_event_and_the_process_survives() -> None:
    m = mapper(compressor=ZlibCompressor(max_size=1 << 16))
    good = m.to_stored_events([Deposited(uuid4(), 1, 10), Deposited(uuid4(), 1, 20)])
    bad_id = uuid4()
    bomb = StoredEvent(bad_id, 3, TOPIC, zlib.compress(b" " * (1 << 20)))
    with pytest.raises(MapperDeserialisationError) as info:
        m.to_domain_events([good[0], bomb, good[1]])
    assert str(bad_id) in str(info.value)
    assert "originator_version 3" in str(info.value)
    assert [e.amount for e in m.to_domain_events(good)] == [10, 20]


@pytest.fixture(params=["memory", "sqlite"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "memory":
        return {"PERSISTENCE_MODULE": "esox.memory"}
    return {
        "PERSISTENCE_MODULE": "esox.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "hostile.db"),
    }


def test_a_bomb_through_the_repository_replay_and_notifications(
    env: dict[str, str],
) -> None:
    app = Items(env | {"COMPRESSOR_TOPIC": "zlib", "MAX_STATE_SIZE": "65536"})
    item_id = app.create("x")
    bomb = zlib.compress(b" " * (1 << 20))
    topic = app.recorder.select_events(item_id)[0].topic
    app.recorder.insert_events([StoredEvent(item_id, 2, topic, bomb)])
    with pytest.raises(MapperDeserialisationError, match="originator_version 2"):
        app.repository.get(item_id)
    with pytest.raises(MapperDeserialisationError, match="MAX_STATE_SIZE"):
        _core.replay(app.mapper, app.recorder, item_id)
    notifications = app.recorder.select_notifications(start=1, limit=10)
    with pytest.raises(MapperDeserialisationError, match=str(item_id)):
        app.mapper.to_domain_events(notifications)
    app.close()


# 2. A topic resolves only to an event class.

SHARED_MEMORY = "multiprocessing.shared_memory:SharedMemory"


@pytest.fixture
def fd() -> Iterator[int]:
    r, w = os.pipe()
    yield r
    for each in (r, w):
        with contextlib.suppress(OSError):
            os.close(each)


def shared_memory_state(fd: int) -> bytes:
    return (
        b'{"_buf":null,"_mmap":null,"_fd":%d,"_name":"x","_size":0,'
        b'"_flags":0,"_mode":0,"_prepend_leading_slash":false}' % fd
    )


def shared_memory_instances() -> int:
    from multiprocessing.shared_memory import SharedMemory

    return sum(isinstance(o, SharedMemory) for o in gc.get_objects())


def assert_open(fd: int) -> None:
    gc.collect()
    os.fstat(fd)  # OSError (EBADF) if a SharedMemory finaliser closed it


@pytest.mark.parametrize(
    "topic", [SHARED_MEMORY, "builtins:dict", "os:system", "builtins:object"]
)
def test_a_topic_that_names_no_event_class_is_refused_before_anything_is_built(
    topic: str, fd: int
) -> None:
    before = shared_memory_instances()
    originator_id = uuid4()
    forged = StoredEvent(originator_id, 1, topic, shared_memory_state(fd))
    with pytest.raises(MapperDeserialisationError) as info:
        mapper().to_domain_event(forged)
    assert "not a domain event class" in str(info.value)
    assert str(originator_id) in str(info.value)
    del info
    assert_open(fd)
    assert shared_memory_instances() == before


def test_event_classes_of_every_accepted_kind_still_decode() -> None:
    import eventsourcing.domain as es_domain

    from esox.domain import Snapshot

    @dataclass(frozen=True)
    class EsEvent(es_domain.DomainEvent):
        amount: int

    m = mapper()
    item = Item("x")
    snapshot = Snapshot.take(item)
    for event in (
        Deposited(uuid4(), 1, 5),
        item.collect_events()[0],
        snapshot,
        EsEvent(
            originator_id=uuid4(),
            originator_version=1,
            timestamp=EsEvent.create_timestamp(),
            amount=3,
        ),
    ):
        back = m.to_domain_event(m.to_stored_event(event))
        assert back == event


def test_a_forged_row_is_refused_by_every_recorder_and_replay(
    env: dict[str, str], fd: int
) -> None:
    app = Items(env)
    item_id = app.create("x")
    before = shared_memory_instances()
    app.recorder.insert_events(
        [StoredEvent(item_id, 2, SHARED_MEMORY, shared_memory_state(fd))]
    )
    with pytest.raises(MapperDeserialisationError, match="not a domain event class"):
        app.repository.get(item_id)
    with pytest.raises(MapperDeserialisationError, match="not a domain event class"):
        _core.replay(app.mapper, app.recorder, item_id)
    notifications = app.recorder.select_notifications(start=1, limit=10)
    with pytest.raises(MapperDeserialisationError, match="not a domain event class"):
        app.mapper.to_domain_events(notifications)
    app.close()
    assert_open(fd)
    assert shared_memory_instances() == before


def test_the_transcoder_builds_only_registered_type_names() -> None:
    t = JSONTranscoder()
    for name in ("os_system", "builtins:dict", SHARED_MEMORY, "__class__"):
        data = b'{"a":{"_type_":"%s","_data_":{"_fd":3}}}' % name.encode()
        with pytest.raises(
            TranscodingNotRegisteredError, match="Please register a custom transcoding"
        ):
            t.decode(data)


# 3. With a cipher, authenticate before resolving the topic.


def test_a_forged_encrypted_row_imports_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = "esox_forged_topic_module"
    marker = tmp_path / "imported"
    (tmp_path / f"{module}.py").write_text(
        "from dataclasses import dataclass\n"
        "from uuid import UUID\n"
        f"open({str(marker)!r}, 'w').close()\n"
        "@dataclass(frozen=True)\n"
        "class Ev:\n"
        "    originator_id: UUID\n"
        "    originator_version: int\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    m = mapper(cipher=AESCipher({"CIPHER_KEY": KEY}))
    forged = StoredEvent(uuid4(), 1, f"{module}:Ev", os.urandom(80))
    with pytest.raises(MapperDeserialisationError, match="could not decrypt"):
        m.to_domain_event(forged)
    good = m.to_stored_event(Deposited(uuid4(), 1, 1))
    with pytest.raises(MapperDeserialisationError, match="could not decrypt"):
        m.to_domain_events([good, forged])
    assert module not in sys.modules
    assert not marker.exists()


# 4. Binding a state to its event (opt-in).


def bound_mapper(bind: str = "y") -> _core.Mapper:
    env = {"CIPHER_KEY": KEY, "CIPHER_BIND_EVENT": bind}
    return mapper(compressor=ZlibCompressor(), cipher=AESCipher(env))


def test_a_bound_state_copied_onto_another_event_does_not_decrypt() -> None:
    m = bound_mapper()
    stored = m.to_stored_event(Deposited(uuid4(), 4, 1000))
    assert m.to_domain_event(stored).amount == 1000
    copies = [
        StoredEvent(uuid4(), 4, stored.topic, stored.state),
        StoredEvent(stored.originator_id, 5, stored.topic, stored.state),
        StoredEvent(stored.originator_id, 4, f"{__name__}:Withdrawn", stored.state),
    ]
    for copy in copies:
        with pytest.raises(MapperDeserialisationError) as info:
            m.to_domain_event(copy)
        assert "CIPHER_BIND_EVENT" in str(info.value)
        assert str(copy.originator_id) in str(info.value)
    # Ids read back as text (as some recorders give them) bind the same.
    as_text = StoredEvent(str(stored.originator_id), 4, stored.topic, stored.state)
    assert m.to_domain_event(as_text).amount == 1000


def test_bound_and_unbound_states_do_not_mix() -> None:
    event = Deposited(uuid4(), 1, 5)
    bound, unbound = bound_mapper("y"), bound_mapper("n")
    with pytest.raises(MapperDeserialisationError, match="CIPHER_BIND_EVENT=yes"):
        unbound.to_domain_event(bound.to_stored_event(event))
    with pytest.raises(MapperDeserialisationError, match="CIPHER_BIND_EVENT is on"):
        bound.to_domain_event(unbound.to_stored_event(event))


def test_unbound_states_stay_readable_by_eventsourcing_and_movable() -> None:
    import eventsourcing.cipher as es_cipher
    import eventsourcing.compressor as es_compressor
    import eventsourcing.persistence as es
    from eventsourcing.utils import Environment

    m = bound_mapper("n")
    stored = m.to_stored_event(Deposited(uuid4(), 1, 1000))
    es_mapper = es.Mapper(
        es.JSONTranscoder(),
        compressor=es_compressor.ZlibCompressor(),
        cipher=es_cipher.AESCipher(Environment(env={"CIPHER_KEY": KEY})),
    )
    assert es_mapper.to_domain_event(stored).amount == 1000
    # eventsourcing's behaviour: an unbound state reads on any event.
    moved = StoredEvent(uuid4(), 1, stored.topic, stored.state)
    assert m.to_domain_event(moved).amount == 1000


def test_bind_event_is_a_truth_value_and_needs_esox_mapper() -> None:
    from esox.persistence.errors import CipherKeyError, PersistenceError

    with pytest.raises(CipherKeyError, match="CIPHER_BIND_EVENT"):
        AESCipher({"CIPHER_KEY": KEY, "CIPHER_BIND_EVENT": "maybe"})
    cipher = AESCipher({"CIPHER_KEY": KEY, "CIPHER_BIND_EVENT": "yes"})
    with pytest.raises(PersistenceError, match="only esox's Mapper"):
        cipher.encrypt(b"{}")
    assert "bind_event=True" in repr(cipher)


def test_stored_aggregate_topics_build_only_aggregates(
    env: dict[str, str], fd: int
) -> None:
    import json

    from esox.domain import Snapshot
    from esox.utils import TopicError

    before = shared_memory_instances()
    app = Items(env)
    item_id = app.create("x")
    created = app.recorder.select_events(item_id)[0]
    state = json.loads(created.state)
    state["originator_topic"] = SHARED_MEMORY
    forged_id = uuid4()
    app.recorder.insert_events(
        [StoredEvent(forged_id, 1, created.topic, json.dumps(state).encode())]
    )
    with pytest.raises(TopicError, match="not an aggregate class"):
        app.repository.get(forged_id)  # replayed in Rust
    with pytest.raises(TopicError, match="not an aggregate class"):
        app.events.get(forged_id)[0].mutate(None)  # and in Python
    snapshot = Snapshot(
        originator_id=item_id,
        originator_version=1,
        timestamp=Snapshot.create_timestamp(),
        topic=SHARED_MEMORY,
        state=json.loads(shared_memory_state(fd)),
    )
    with pytest.raises(TopicError, match="not an aggregate class"):
        app.mapper.to_domain_event(app.mapper.to_stored_event(snapshot)).mutate(None)
    app.close()
    del snapshot
    assert_open(fd)
    assert shared_memory_instances() == before
