"""Compression and encryption of stored state: esox's zlib, zstd and AES-GCM
(native), other compressors and ciphers (through Python), their order, keys
and the errors of damaged data."""

from __future__ import annotations

import base64
import zlib
from typing import Any
from uuid import UUID, uuid4

import pytest

from esox._core import AesGcm, Mapper, StoredEvent
from esox.persistence import InfrastructureFactory
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor, ZstdCompressor
from esox.persistence.errors import (
    CipherKeyError,
    InfrastructureFactoryError,
    MapperDeserialisationError,
)
from esox.persistence.transcoding import JSONTranscoder
from tests.values import Happened, assert_round_trips_in_threads

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()

TOPIC = "tests.values:Happened"


def events(n: int) -> list[Happened]:
    return [
        Happened(uuid4(), i + 1, {"i": i, "text": "x" * (i % 50)}) for i in range(n)
    ]


def cipher(key: str = KEY, **env: str) -> AESCipher:
    return AESCipher({"CIPHER_KEY": key, **env})


class PyZlib:
    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes) -> bytes:
        return zlib.decompress(data)


class Reversing:
    def encrypt(self, data: bytes) -> bytes:
        return data[::-1]

    def decrypt(self, data: bytes) -> bytes:
        return data[::-1]


COMPRESSORS = [None, ZlibCompressor(), ZstdCompressor(), PyZlib()]
CIPHERS = [None, cipher(), Reversing()]


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=repr)
@pytest.mark.parametrize("cipher_", CIPHERS, ids=repr)
@pytest.mark.parametrize("n", [1, 3, 2000])
def test_every_combination_round_trips_single_and_in_batches(
    compressor: Any, cipher_: Any, n: int
) -> None:
    mapper = Mapper(JSONTranscoder(), compressor=compressor, cipher=cipher_)
    originals = events(n)
    stored = mapper.to_stored_events(originals)
    assert mapper.to_domain_events(stored) == originals
    assert mapper.to_domain_event(mapper.to_stored_event(originals[0])) == originals[0]


def test_state_is_encoded_then_compressed_then_encrypted() -> None:
    c = cipher()
    mapper = Mapper(JSONTranscoder(), compressor=ZlibCompressor(), cipher=c)
    stored = mapper.to_stored_event(Happened(uuid4(), 1, "v"))
    assert zlib.decompress(c.decrypt(stored.state)) == b'{"value":"v"}'
    zstd_mapper = Mapper(JSONTranscoder(), compressor=ZstdCompressor())
    stored = zstd_mapper.to_stored_event(Happened(uuid4(), 1, "v"))
    assert stored.state.startswith(b"\x28\xb5\x2f\xfd")
    assert ZstdCompressor().decompress(stored.state) == b'{"value":"v"}'


def test_native_zlib_reads_and_writes_what_python_zlib_does() -> None:
    data = b'{"a":"' + b"abc" * 1000 + b'"}'
    assert zlib.decompress(ZlibCompressor().compress(data)) == data
    for level in (0, 1, 6, 9):
        assert ZlibCompressor().decompress(zlib.compress(data, level)) == data
    assert ZlibCompressor().compress(b"")[0] == 0x78


def test_aes_gcm_layout_is_nonce_tag_ciphertext_with_a_fresh_nonce_each_time() -> None:
    c = cipher()
    a, b = c.encrypt(b"same"), c.encrypt(b"same")
    assert len(a) == 12 + 16 + 4
    assert a[:12] != b[:12]
    assert c.decrypt(a) == c.decrypt(b) == b"same"
    batch = Mapper(JSONTranscoder(), cipher=c).to_stored_events(events(100))
    assert len({s.state[:12] for s in batch}) == 100


@pytest.mark.parametrize("size", [16, 24, 32])
def test_every_aes_key_size_works(size: int) -> None:
    key = AESCipher.create_key(size)
    assert len(base64.b64decode(key)) == size
    c = cipher(key)
    assert c.key_size == size
    assert c.decrypt(c.encrypt(b"data")) == b"data"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "CIPHER_KEY is not set"),
        ({"CIPHER_KEY": "not base64 at all!"}, "not valid base64"),
        ({"CIPHER_KEY": base64.b64encode(b"k" * 20).decode()}, "20 bytes"),
        (
            {"CIPHER_KEY": KEY, "CIPHER_OLD_KEYS": "Zm9v"},
            "CIPHER_OLD_KEYS item 1 decodes to 3 bytes",
        ),
    ],
)
def test_bad_keys_raise_cipher_key_error_naming_the_problem_not_the_key(
    env: dict[str, str], problem: str
) -> None:
    with pytest.raises(CipherKeyError, match=problem) as info:
        AESCipher(env)
    for value in env.values():
        assert value not in str(info.value)
    with pytest.raises(CipherKeyError):
        AESCipher.create_key(20)
    with pytest.raises(CipherKeyError, match="not 5 bytes"):
        AesGcm(b"x" * 5)


def test_keys_never_appear_in_repr_or_str() -> None:
    c = cipher(KEY, CIPHER_OLD_KEYS=OTHER_KEY)
    raw = base64.b64decode(KEY)
    for text in (repr(c), str(c), repr(c._aead), repr(vars(c))):
        assert KEY not in text
        assert repr(raw) not in text
    assert repr(c) == "AESCipher(key_size=32)"


def test_old_keys_decrypt_after_rotation_and_new_states_use_the_new_key() -> None:
    old = Mapper(JSONTranscoder(), cipher=cipher(KEY))
    stored = old.to_stored_events(events(3))
    rotated = Mapper(
        JSONTranscoder(), cipher=cipher(OTHER_KEY, CIPHER_OLD_KEYS=f" {KEY} ,")
    )
    assert rotated.to_domain_events(stored) == old.to_domain_events(stored)
    new = rotated.to_stored_events(events(1))
    with pytest.raises(MapperDeserialisationError, match="authentication failed"):
        old.to_domain_events(new)


def stored_with(state: bytes) -> StoredEvent:
    return StoredEvent(UUID(int=5), 7, TOPIC, state)


def assert_names_the_event(message: str) -> None:
    assert str(UUID(int=5)) in message
    assert "originator_version 7" in message
    assert TOPIC in message


@pytest.mark.parametrize("compressor", [None, ZlibCompressor(), ZstdCompressor()])
def test_wrong_key_tampering_and_truncation_raise_deserialisation_errors(
    compressor: Any,
) -> None:
    mapper = Mapper(JSONTranscoder(), compressor=compressor, cipher=cipher())
    state = mapper.to_stored_event(Happened(uuid4(), 1, "secret")).state
    wrong = Mapper(JSONTranscoder(), compressor=compressor, cipher=cipher(OTHER_KEY))
    with pytest.raises(MapperDeserialisationError) as info:
        wrong.to_domain_event(stored_with(state))
    assert "could not decrypt state" in str(info.value)
    assert_names_the_event(str(info.value))
    for i in (0, 12, 20, len(state) - 1):
        tampered = bytearray(state)
        tampered[i] ^= 1
        with pytest.raises(MapperDeserialisationError, match="could not decrypt"):
            mapper.to_domain_event(stored_with(bytes(tampered)))
    with pytest.raises(MapperDeserialisationError, match="too short"):
        mapper.to_domain_event(stored_with(state[:20]))


@pytest.mark.parametrize("compressor", [ZlibCompressor(), ZstdCompressor()])
def test_corrupt_compressed_state_names_the_event(compressor: Any) -> None:
    mapper = Mapper(JSONTranscoder(), compressor=compressor)
    state = mapper.to_stored_event(Happened(uuid4(), 1, "x" * 100)).state
    for bad in (b"", b"plain json", state[: len(state) // 2], state[:4] + b"\0" * 9):
        with pytest.raises(MapperDeserialisationError) as info:
            mapper.to_domain_event(stored_with(bad))
        assert "could not decompress state" in str(info.value)
        assert_names_the_event(str(info.value))


def test_the_first_bad_event_of_a_batch_is_the_one_reported() -> None:
    mapper = Mapper(JSONTranscoder(), compressor=ZlibCompressor(), cipher=cipher())
    stored = mapper.to_stored_events(events(5))
    bad_json = stored_with(cipher().encrypt(zlib.compress(b"{")))
    bad_cipher = StoredEvent(UUID(int=2), 2, TOPIC, b"\0" * 40)
    with pytest.raises(MapperDeserialisationError, match="invalid JSON"):
        mapper.to_domain_events([*stored[:2], bad_json, bad_cipher])
    with pytest.raises(MapperDeserialisationError, match="could not decrypt"):
        mapper.to_domain_events([*stored[:2], bad_cipher, bad_json])


def test_a_failing_python_cipher_stage_is_reported_with_its_cause() -> None:
    class Broken(Reversing):
        def decrypt(self, data: bytes) -> bytes:
            raise ValueError("bad tag")

    mapper = Mapper(JSONTranscoder(), compressor=ZlibCompressor(), cipher=Broken())
    with pytest.raises(MapperDeserialisationError, match="bad tag") as info:
        mapper.to_domain_events([stored_with(b"x")])
    assert isinstance(info.value.__cause__, ValueError)


def test_mapper_exposes_the_objects_it_was_given() -> None:
    compressor, c = ZstdCompressor(), cipher()
    mapper = Mapper(JSONTranscoder(), compressor=compressor, cipher=c)
    assert mapper.compressor is compressor
    assert mapper.cipher is c


def test_a_subclass_of_an_esox_compressor_is_called_through_python() -> None:
    calls: list[int] = []

    class Counting(ZlibCompressor):
        def compress(self, data: bytes) -> bytes:
            calls.append(len(data))
            return super().compress(data)

    mapper = Mapper(JSONTranscoder(), compressor=Counting())
    stored = mapper.to_stored_events(events(3))
    assert len(calls) == 3
    assert mapper.to_domain_events(stored) == Mapper(
        JSONTranscoder(), compressor=ZlibCompressor()
    ).to_domain_events(stored)


def test_large_batches_are_safe_to_run_from_several_threads_at_once() -> None:
    mapper = Mapper(JSONTranscoder(), compressor=ZstdCompressor(), cipher=cipher())
    originals = events(3000)
    assert_round_trips_in_threads(mapper, originals, threads=3, times=3, timeout=120)


class Factory(InfrastructureFactory):
    def aggregate_recorder(self, purpose: str = "events") -> Any:
        raise NotImplementedError

    def application_recorder(self) -> Any:
        raise NotImplementedError

    def tracking_recorder(self, tracking_recorder_class: Any = None) -> Any:
        raise NotImplementedError

    def process_recorder(self) -> Any:
        raise NotImplementedError


@pytest.mark.parametrize(
    ("topic", "cls"),
    [
        ("zlib", ZlibCompressor),
        ("eventsourcing.compressor:ZlibCompressor", ZlibCompressor),
        ("esox.persistence.compression:ZlibCompressor", ZlibCompressor),
        ("zstd", ZstdCompressor),
        ("esox.persistence.compression:ZstdCompressor", ZstdCompressor),
        (f"{__name__}:PyZlib", PyZlib),
    ],
)
def test_compressor_topic_selects_the_compressor(topic: str, cls: type) -> None:
    assert type(Factory({"COMPRESSOR_TOPIC": topic}).compressor()) is cls


def test_an_unknown_compressor_topic_is_a_factory_error() -> None:
    with pytest.raises(InfrastructureFactoryError, match="'zlip'"):
        Factory({"COMPRESSOR_TOPIC": "zlip"}).compressor()


@pytest.mark.parametrize(
    "env",
    [
        {"CIPHER_KEY": KEY},
        {"CIPHER_KEY": KEY, "CIPHER_TOPIC": "eventsourcing.cipher:AESCipher"},
        {"CIPHER_KEY": KEY, "CIPHER_TOPIC": "esox.persistence.cipher:AESCipher"},
    ],
)
def test_cipher_key_selects_esox_aes_cipher(env: dict[str, str]) -> None:
    c = Factory(env).cipher()
    assert type(c) is AESCipher
    assert c.decrypt(cipher().encrypt(b"x")) == b"x"


def test_no_cipher_without_key_and_a_key_error_with_topic_but_no_key() -> None:
    assert Factory({}).cipher() is None
    with pytest.raises(CipherKeyError, match="CIPHER_KEY is not set"):
        Factory({"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher"}).cipher()


def test_the_factory_mapper_compresses_and_encrypts_with_the_app_prefix() -> None:
    factory = Factory(
        {"COMPRESSOR_TOPIC": "zstd", "MYAPP_CIPHER_KEY": KEY, "CIPHER_KEY": OTHER_KEY}
    )
    factory.env.name = "myapp"
    mapper = factory.mapper()
    stored = mapper.to_stored_event(Happened(uuid4(), 1, "v"))
    assert ZstdCompressor().decompress(cipher(KEY).decrypt(stored.state)) == (
        b'{"value":"v"}'
    )
