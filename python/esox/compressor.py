"""eventsourcing's module name for the zlib compressor
(``esox.compressor:ZlibCompressor``)."""

from esox.persistence.compression import ZlibCompressor

__all__ = ["ZlibCompressor"]
