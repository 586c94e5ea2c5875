"""The one place where esox hands ``esox._core`` what it needs of esox.

The crate imports no esox module: at import, this module calls
``_core._bind`` once with the exception classes Rust raises, the
transcodings, compressors and cipher it recognises (and then does natively),
the topic functions, and the replay contract (``esox.domain.contract``).
``esox.persistence`` imports it last, so every user of ``esox._core`` (all
import ``esox.persistence`` or one of its modules) finds it bound.
"""

from __future__ import annotations

from typing import Any

from esox import _core
from esox.domain import AbstractDecision, DomainEvent, contract
from esox.persistence import errors
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor, ZstdCompressor
from esox.persistence.transcoding import (
    BytesAsBase64,
    DataclassAsTopicFields,
    DateAsISO,
    EnumAsTopicValue,
)
from esox.utils import get_topic, resolve_topic

__all__: list[str] = []

RAISED_BY_RUST = (
    errors.PersistenceError,
    errors.InterfaceError,
    errors.DataError,
    errors.OperationalError,
    errors.IntegrityError,
    errors.InternalError,
    errors.ProgrammingError,
    errors.MissingTableError,
    errors.NotSupportedError,
    errors.WaitInterruptedError,
    errors.MapperDeserialisationError,
    errors.TranscodingNotRegisteredError,
    errors.CipherKeyError,
)
"""The exception classes that Rust raises (by kind, rust/errors.rs)."""


def bindings() -> dict[str, Any]:
    """What ``_core._bind`` is given (a fresh dict each call)."""
    return {
        "errors": {cls.__name__: cls for cls in RAISED_BY_RUST},
        "get_topic": get_topic,
        "resolve_topic": resolve_topic,
        "DomainEvent": DomainEvent,
        "AbstractDecision": AbstractDecision,
        "DateAsISO": DateAsISO,
        "BytesAsBase64": BytesAsBase64,
        "EnumAsTopicValue": EnumAsTopicValue,
        "DataclassAsTopicFields": DataclassAsTopicFields,
        "ZlibCompressor": ZlibCompressor,
        "ZstdCompressor": ZstdCompressor,
        "AESCipher": AESCipher,
        "replay_names": dict(contract.NAMES),
        "replay_objects": contract.objects(),
    }


if not _core._is_bound():
    _core._bind(bindings())
