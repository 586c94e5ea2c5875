"""Mapper workloads: domain events to stored events (encode) and back (decode),
as plain JSON, zlib, zstd, AES-GCM, and zlib then AES-GCM, of two kinds of
event: the README's Dog tricks (one string attribute), and parcels'
``Shipped`` events with ten attributes of mixed types (a UUID, a Decimal, a
datetime, a float, an int, a bool, an optional note, a list and a dict: the
variants "..., 10 attributes").

esox maps the whole list in one call; eventsourcing maps one event at a time,
as its event store does, with the transcodings its applications register. It
has no zstd: its side of the zstd variants is its zlib. The practical limit
is ``orjson.dumps``/``loads`` of the same state dicts (with stdlib ``zlib``
and ``cryptography``'s AES-GCM for the compressed and encrypted variants):
JSON bytes alone, no event objects.

``benches/bench_mapper.py`` runs the same workloads under pytest-benchmark.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import uuid4

from esox.bench import models
from esox.bench.harness import Twin, Workload
from esox.bench.plan import Plan
from esox.persistence import JSONTranscoder, Mapper
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor, ZstdCompressor

__all__ = ["CIPHER_KEY", "KINDS", "VARIANTS", "events", "workloads"]

VARIANTS = ("plain", "zlib", "zstd", "AES", "zlib+AES")
# The kinds of event, and what their variants' names end with.
KINDS = {"Dog": "", "Shipped": ", 10 attributes"}
CIPHER_KEY = AESCipher.create_key(32)


def events(kind: str, library: str, count: int) -> list[Any]:
    """``count`` events of one aggregate of ``library``'s model: a dog
    registered, then tricks; or a parcel packed, then ``Shipped`` events."""
    if library == "esox":
        module: Any = models
    else:
        from esox.bench import es_models as module
    if kind == "Dog":
        dog = module.Dog("Fido")
        for i in range(count - 1):
            dog.add_trick(f"trick {i}")
        return list(dog.collect_events())
    parcel = module.Parcel()
    for i in range(count - 1):
        parcel.ship(
            parcel_id=uuid4(),
            carrier="Parcelforce",
            weight_kg=1.25 + i,
            items=i % 7,
            price=Decimal("19.99"),
            express=i % 2 == 0,
            note=None if i % 3 else "leave with neighbour",
            shipped_at=datetime(2024, 5, 6, 7, 8, 9, i % 1000, tzinfo=UTC),
            tags=["fragile", "gift"],
            address={"street": "1 High St", "city": "Leeds", "postcode": "LS1 1AA"},
        )
    return list(parcel.collect_events())


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
        for kind, suffix in KINDS.items():
            for variant in VARIANTS:
                has_limit = variant != "zstd" and not limit_missing(variant)
                # eventsourcing's AES (pycryptodome) takes 0.2 ms an event.
                scales = plan.slow_scales() if "AES" in variant else plan.scales
                for scale in scales:
                    found.append(
                        Workload(
                            family=f"mapper {direction}",
                            variant=variant + suffix,
                            scale=scale,
                            units=scale,
                            build=partial(build, plan, direction, kind, variant, scale),
                            repeats=plan.repeats_at(scale),
                            side_repeats=plan.side_repeats_at(scale, scales),
                            limit_name="orjson" if has_limit else "",
                            note="eventsourcing has no zstd: its side is zlib"
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
    """eventsourcing's mapper for the variant (zlib for zstd, which it has
    not), with the transcodings its applications have."""
    import eventsourcing.persistence as es
    from eventsourcing.cipher import AESCipher as EsAESCipher
    from eventsourcing.compressor import ZlibCompressor as EsZlibCompressor
    from eventsourcing.utils import Environment

    transcoder = es.JSONTranscoder()
    transcoder.register(es.UUIDAsHex())
    transcoder.register(es.DecimalAsStr())
    transcoder.register(es.DatetimeAsISO())
    compressed = "zlib" in variant or variant == "zstd"
    compressor = EsZlibCompressor() if compressed else None
    cipher = None
    if "AES" in variant:
        cipher = EsAESCipher(Environment(env={"CIPHER_KEY": CIPHER_KEY}))
    return es.Mapper(transcoder=transcoder, compressor=compressor, cipher=cipher)


def _state(event: Any) -> dict[str, Any]:
    state = dict(event.__dict__)
    del state["originator_id"], state["originator_version"]
    return state


def limit_codec(
    variant: str, default: Callable[[Any], Any] | None = None
) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """The plain tools' encode and decode of one state dict for the variant
    (``default`` encodes what orjson does not, as ``orjson.dumps``'s)."""
    import orjson

    dumps: Callable[[Any], bytes] = orjson.dumps
    if default is not None:
        dumps = partial(orjson.dumps, default=default)
    loads = orjson.loads
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


def _twin(function: Callable[[Any], object], argument: Any) -> Twin:
    """A twin whose block is ``function(argument)``."""
    block = partial(function, argument)
    return Twin(lambda: block)


def _each(function: Callable[[Any], object]) -> Callable[[list[Any]], object]:
    """``function`` of each item of a list: eventsourcing's way, per event."""

    def each(items: list[Any]) -> object:
        return [function(item) for item in items]

    return each


def build(
    plan: Plan, direction: str, kind: str, variant: str, scale: int
) -> dict[str, Twin]:
    """Twins that encode (or decode) ``scale`` events of one aggregate."""
    encode = direction == "encode"
    mapper = esox_mapper(variant)
    domain = events(kind, "esox", scale)
    twins: dict[str, Twin] = {}
    if encode:
        twins["esox"] = _twin(mapper.to_stored_events, domain)
    else:
        stored = mapper.to_stored_events(domain)
        twins["esox"] = _twin(mapper.to_domain_events, stored)

    if plan.eventsourcing:
        es = es_mapper(variant)
        es_domain = events(kind, "eventsourcing", scale)
        if encode:
            twins["eventsourcing"] = _twin(_each(es.to_stored_event), es_domain)
        else:
            es_stored = [es.to_stored_event(e) for e in es_domain]
            twins["eventsourcing"] = _twin(_each(es.to_domain_event), es_stored)

    if variant != "zstd" and not limit_missing(variant):
        # orjson has no Decimal: str, as eventsourcing's DecimalAsStr.
        dumps, loads = limit_codec(variant, str if kind == "Shipped" else None)
        states = [_state(e) for e in domain]
        if encode:
            twins["limit"] = _twin(_each(dumps), states)
        else:
            twins["limit"] = _twin(_each(loads), [dumps(s) for s in states])
    return twins
