"""Compressors of stored-event state: zlib (eventsourcing's) and zstd.

The mapper recognises these exact classes and compresses and decompresses
natively, a whole batch at a time with the GIL released. Any other object
with ``compress`` and ``decompress`` methods works too, called from Rust one
state at a time. Every state is compressed, however small, so stored bytes
are always one zlib stream (first byte 0x78) or one zstd frame (magic number
``28 b5 2f fd``): what eventsourcing writes with ``COMPRESSOR_TOPIC=zlib``
reads here, and what esox writes with zlib reads there.

Decompression never produces more than ``max_size`` bytes (the
``MAX_STATE_SIZE`` setting, 64 MiB by default) and never trusts a size
declared in the stored bytes: a state that would grow past it (a
decompression bomb, or a corrupt frame header) raises
MapperDeserialisationError instead of exhausting memory.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from esox import _core

__all__ = ["DEFAULT_MAX_STATE_SIZE", "Compressor", "ZlibCompressor", "ZstdCompressor"]


@runtime_checkable
class Compressor(Protocol):
    """What a mapper's compressor is: esox's zlib and zstd, eventsourcing's
    ``ZlibCompressor``, or any object with these two methods."""

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


DEFAULT_MAX_STATE_SIZE = 64 * 1024 * 1024
"""The largest state decompression produces unless ``MAX_STATE_SIZE`` says."""


class ZlibCompressor:
    """zlib streams, compatible both ways with eventsourcing's ``ZlibCompressor``.

    States up to 1 KiB are written as one block with deflate's fixed Huffman
    code (several times faster to write and to read than a per-block code,
    which pays off only on larger data); larger ones by libdeflate at level
    6. Any zlib stream is read, whoever wrote it.
    """

    name: ClassVar[str] = "zlib"

    def __init__(self, max_size: int = DEFAULT_MAX_STATE_SIZE) -> None:
        """Decompress states of up to ``max_size`` bytes."""
        self.max_size = max_size

    def compress(self, data: bytes) -> bytes:
        """Return ``data`` as one zlib stream."""
        return _core.zlib_compress(data)

    def decompress(self, data: bytes) -> bytes:
        """Return the data of a zlib stream (MapperDeserialisationError if corrupt).

        MapperDeserialisationError too if it holds more than ``max_size`` bytes.
        """
        return _core.zlib_decompress(data, self.max_size)

    def __repr__(self) -> str:
        return "ZlibCompressor()"


class ZstdCompressor:
    """zstd frames (level 3), esox only: better and faster on large states.

    On event-sized states (hundreds of bytes) zstd's per-frame set-up costs
    more than the fixed-code zlib above. eventsourcing has no zstd
    compressor; an application that must stay readable by eventsourcing
    should use zlib.
    """

    name: ClassVar[str] = "zstd"

    def __init__(self, max_size: int = DEFAULT_MAX_STATE_SIZE) -> None:
        """Decompress states of up to ``max_size`` bytes."""
        self.max_size = max_size

    def compress(self, data: bytes) -> bytes:
        """Return ``data`` as one zstd frame."""
        return _core.zstd_compress(data)

    def decompress(self, data: bytes) -> bytes:
        """Return the data of a zstd frame (MapperDeserialisationError if corrupt).

        MapperDeserialisationError too if it holds more than ``max_size`` bytes.
        """
        return _core.zstd_decompress(data, self.max_size)

    def __repr__(self) -> str:
        return "ZstdCompressor()"
