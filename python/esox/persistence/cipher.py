"""AES-GCM encryption of stored-event state, compatible with eventsourcing.

``AESCipher`` writes ``nonce(12) || tag(16) || ciphertext`` with a fresh
random nonce per state, exactly as eventsourcing's ``AESCipher`` does, so
each library decrypts what the other wrote with the same key. The work is
done in Rust (``esox._core.AesGcm``); the mapper recognises this exact class
and encrypts and decrypts a whole batch natively with the GIL released.

Keys come from the environment:

``CIPHER_KEY``
    base64 of 16, 24 or 32 random bytes (AES-128, -192 or -256); encrypts
    new states and decrypts. Make one with ``AESCipher.create_key()``.
``CIPHER_OLD_KEYS``
    optional, comma-separated base64 keys tried, in order, after
    ``CIPHER_KEY`` when decrypting. To rotate keys: put the current key in
    ``CIPHER_OLD_KEYS``, a new one in ``CIPHER_KEY``; states written before
    still read, new ones use the new key. (Old states keep their old key
    until re-written; drop an old key only when nothing needs it.)
``CIPHER_BIND_EVENT``
    optional, default no. With yes, each state is bound to its event: the
    originator id, version and topic are AES-GCM associated data, so a
    state copied onto another event fails to decrypt. An esox-only format:
    eventsourcing cannot read states written with it, and esox reads them
    only with it on.

Keys never appear in a repr, str or error message.
"""

from __future__ import annotations

import binascii
import os
from base64 import b64decode, b64encode
from collections.abc import Mapping
from typing import ClassVar, Protocol, runtime_checkable

from esox import _core
from esox.persistence.errors import CipherKeyError, PersistenceError
from esox.utils import Environment, SettingError

__all__ = ["AESCipher", "Cipher"]


@runtime_checkable
class Cipher(Protocol):
    """What a mapper's cipher is: esox's ``AESCipher``, or any object with
    these two methods (``CIPHER_TOPIC`` names its class, which is constructed
    with the environment)."""

    def encrypt(self, plaintext: bytes) -> bytes: ...

    def decrypt(self, ciphertext: bytes) -> bytes: ...


KEY_SIZES = (16, 24, 32)


def _decode_key(value: str, what: str) -> bytes:
    """The bytes of a base64 key; CipherKeyError naming ``what``, never the key."""
    text = value.strip()
    if not text:
        msg = f"{what} is empty; set it to base64 of 16, 24 or 32 random bytes"
        raise CipherKeyError(msg)
    try:
        key = b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        msg = (
            f"{what} is not valid base64 ({len(text)} characters); "
            "make a key with AESCipher.create_key()"
        )
        raise CipherKeyError(msg) from None
    if len(key) not in KEY_SIZES:
        msg = (
            f"{what} decodes to {len(key)} bytes; an AES key must be 16, 24 or 32 bytes"
        )
        raise CipherKeyError(msg)
    return key


class AESCipher:
    """AES-GCM with the key in ``CIPHER_KEY`` (and ``CIPHER_OLD_KEYS`` for reading).

    ``env`` is any mapping with a ``get`` method (an ``Environment`` or dict).
    Raises CipherKeyError if a key is missing, not base64, or of a size
    other than 16, 24 or 32 bytes.
    """

    CIPHER_KEY: ClassVar[str] = "CIPHER_KEY"
    CIPHER_OLD_KEYS: ClassVar[str] = "CIPHER_OLD_KEYS"
    CIPHER_BIND_EVENT: ClassVar[str] = "CIPHER_BIND_EVENT"
    KEY_SIZES: ClassVar[tuple[int, ...]] = KEY_SIZES

    def __init__(self, env: Mapping[str, str]) -> None:
        value = env.get(self.CIPHER_KEY)
        if not value:
            msg = f"{self.CIPHER_KEY} is not set; AESCipher needs a key"
            raise CipherKeyError(msg)
        key = _decode_key(value, self.CIPHER_KEY)
        old_keys = [
            _decode_key(part, f"{self.CIPHER_OLD_KEYS} item {i}")
            for i, part in enumerate(
                (env.get(self.CIPHER_OLD_KEYS) or "").split(","), 1
            )
            if part.strip()
        ]
        typed_env = env if isinstance(env, Environment) else Environment(env=dict(env))
        try:
            self.bind_event = typed_env.read_bool(self.CIPHER_BIND_EVENT, False)
        except SettingError as e:
            raise CipherKeyError(str(e)) from None
        self._aead = _core.AesGcm(key, old_keys)

    @staticmethod
    def random_bytes(num_bytes: int) -> bytes:
        """``num_bytes`` random bytes from the operating system."""
        return os.urandom(num_bytes)

    @staticmethod
    def create_key(num_bytes: int = 32) -> str:
        """A new random key of ``num_bytes`` (16, 24 or 32), as base64 text."""
        if num_bytes not in KEY_SIZES:
            msg = f"an AES key must be 16, 24 or 32 bytes, not {num_bytes}"
            raise CipherKeyError(msg)
        return b64encode(os.urandom(num_bytes)).decode("ascii")

    @property
    def key_size(self) -> int:
        """The size in bytes of the key that encrypts (16, 24 or 32)."""
        return self._aead.key_size

    def encrypt(self, plaintext: bytes) -> bytes:
        """``nonce || tag || ciphertext`` of ``plaintext``, with a fresh nonce."""
        self._unbound()
        return self._aead.encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """The plaintext; MapperDeserialisationError if damaged or of another key."""
        self._unbound()
        return self._aead.decrypt(ciphertext)

    def _unbound(self) -> None:
        # A bound state needs its event: only esox's mapper has it.
        if self.bind_event:
            msg = (
                f"{self.CIPHER_BIND_EVENT} is on: states are bound to their events, "
                "so only esox's Mapper (which knows the event) can encrypt and "
                "decrypt them; this caller has only the bytes"
            )
            raise PersistenceError(msg)

    def __repr__(self) -> str:
        bound = ", bind_event=True" if self.bind_event else ""
        return f"AESCipher(key_size={self.key_size}{bound})"
