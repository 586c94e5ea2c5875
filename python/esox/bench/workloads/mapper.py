"""Mapper workloads: domain events to stored events (encode) and back (decode),
as plain JSON, zlib, zstd (esox only), AES-GCM, and zlib then AES-GCM.

esox maps the whole list in one call; eventsourcing maps one event at a time,
as its event store does. The practical limit is ``orjson.dumps``/``loads`` of
the same state dicts (with stdlib ``zlib`` and ``cryptography``'s AES-GCM for
the compressed and encrypted variants): JSON bytes alone, no event objects.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

from esox.bench import models
from esox.bench.harness import Twin, Workload
from esox.bench.plan import Plan
from esox.persistence import JSONTranscoder, Mapper
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor, ZstdCompressor

__all__ = ["CIPHER_KEY", "VARIANTS", "dog_events", "workloads"]

VARIANTS = ("plain", "zlib", "zstd", "AES", "zlib+AES")
CIPHER_KEY = AESCipher.create_key(32)


def dog_events(dog_cls: Any, count: int) -> list[Any]:
    """``count`` events of one dog: registered, then tricks."""
    dog = dog_cls("Fido")
    for i in range(count - 1):
        dog.add_trick(f"trick {i}")
    return list(dog.collect_events())


def _missing_module(name: str) -> str:
    try:
        __import__(name)
    except ImportError:
        return name
    return ""


def limit_missing(variant: str) -> str:
    """The module the variant's practical limit needs and lacks ("" if none)."""
    needed = ["orjson"]
    if "AES" in variant:
        needed.append("cryptography")
    return next((m for m in map(_missing_module, needed) if m), "")


def workloads(plan: Plan) -> list[Workload]:
    """The mapper workloads of the plan."""
    found = []
    for direction in ("encode", "decode"):
        for variant in VARIANTS:
            has_limit = variant != "zstd" and not limit_missing(variant)
            # eventsourcing's AES (pycryptodome) takes 0.2 ms an event.
            scales = plan.slow_scales() if "AES" in variant else plan.scales
            for scale in scales:
                found.append(
                    Workload(
                        family=f"mapper {direction}",
                        variant=variant,
                        scale=scale,
                        units=scale,
                        build=partial(build, plan, direction, variant, scale),
                        repeats=plan.repeats_at(scale),
                        side_repeats=plan.side_repeats_at(scale, scales),
                        limit_name="orjson" if has_limit else "",
                        note="esox only (eventsourcing has no zstd)"
                        if variant == "zstd"
                        else "",
                    )
                )
    return found


def esox_mapper(variant: str) -> Mapper[Any]:
    """esox's mapper for the variant."""
    compressor: Any = None
    if "zlib" in variant:
        compressor = ZlibCompressor()
    elif variant == "zstd":
        compressor = ZstdCompressor()
    cipher = AESCipher({"CIPHER_KEY": CIPHER_KEY}) if "AES" in variant else None
    return Mapper(JSONTranscoder(), compressor=compressor, cipher=cipher)


def es_mapper(variant: str) -> Any:
    """eventsourcing's mapper for the variant, transcodings as its apps have."""
    import eventsourcing.persistence as es
    from eventsourcing.cipher import AESCipher as EsAESCipher
    from eventsourcing.compressor import ZlibCompressor as EsZlibCompressor
    from eventsourcing.utils import Environment

    transcoder = es.JSONTranscoder()
    transcoder.register(es.UUIDAsHex())
    transcoder.register(es.DecimalAsStr())
    transcoder.register(es.DatetimeAsISO())
    compressor = EsZlibCompressor() if "zlib" in variant else None
    cipher = None
    if "AES" in variant:
        cipher = EsAESCipher(Environment(env={"CIPHER_KEY": CIPHER_KEY}))
    return es.Mapper(transcoder=transcoder, compressor=compressor, cipher=cipher)


def _state(event: Any) -> dict[str, Any]:
    state = dict(event.__dict__)
    del state["originator_id"], state["originator_version"]
    return state


def limit_codec(variant: str) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """The plain tools' encode and decode of one state dict for the variant."""
    import orjson

    dumps, loads = orjson.dumps, orjson.loads
    compress, decompress = zlib.compress, zlib.decompress
    if "AES" not in variant:
        if variant == "zlib":
            return (lambda d: compress(dumps(d))), (lambda b: loads(decompress(b)))
        return dumps, loads
    from base64 import b64decode

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(b64decode(CIPHER_KEY))
    encrypt, decrypt, urandom = aead.encrypt, aead.decrypt, os.urandom

    def seal(data: bytes) -> bytes:
        nonce = urandom(12)
        return nonce + encrypt(nonce, data, None)

    def open_(data: bytes) -> bytes:
        return decrypt(data[:12], data[12:], None)

    if variant == "zlib+AES":
        return (lambda d: seal(compress(dumps(d)))), (
            lambda b: loads(decompress(open_(b)))
        )
    return (lambda d: seal(dumps(d))), (lambda b: loads(open_(b)))


def build(plan: Plan, direction: str, variant: str, scale: int) -> dict[str, Twin]:
    """Twins that encode (or decode) ``scale`` events of one dog."""
    twins: dict[str, Twin] = {}
    encode = direction == "encode"

    mapper = esox_mapper(variant)
    events = dog_events(models.Dog, scale)
    if encode:
        to_stored_events = mapper.to_stored_events

        def esox_block() -> object:
            return to_stored_events(events)

    else:
        stored = mapper.to_stored_events(events)
        to_domain_events = mapper.to_domain_events

        def esox_block() -> object:
            return to_domain_events(stored)

    twins["esox"] = Twin(lambda: esox_block)

    if plan.eventsourcing and variant != "zstd":
        from esox.bench import es_models

        es = es_mapper(variant)
        es_events = dog_events(es_models.Dog, scale)
        if encode:
            to_stored = es.to_stored_event

            def es_block() -> object:
                return [to_stored(e) for e in es_events]

        else:
            es_stored = [es.to_stored_event(e) for e in es_events]
            to_domain = es.to_domain_event

            def es_block() -> object:
                return [to_domain(s) for s in es_stored]

        twins["eventsourcing"] = Twin(lambda: es_block)

    if variant != "zstd" and not limit_missing(variant):
        dumps, loads = limit_codec(variant)
        states = [_state(e) for e in events]
        if encode:

            def limit_block() -> object:
                return [dumps(s) for s in states]

        else:
            encoded = [dumps(s) for s in states]

            def limit_block() -> object:
                return [loads(b) for b in encoded]

        twins["limit"] = Twin(lambda: limit_block)
    return twins
