"""eventsourcing's module name for the AES-GCM cipher (``esox.cipher:AESCipher``)."""

from esox.persistence.cipher import AESCipher

__all__ = ["AESCipher"]
