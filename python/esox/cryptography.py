"""eventsourcing's module name for its AES-GCM cipher built on the
``cryptography`` package; in esox it is the same native ``AESCipher``."""

from esox.persistence.cipher import AESCipher

__all__ = ["AESCipher"]
