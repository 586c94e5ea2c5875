"""PostgreSQL identifiers: checked, quoted, and cut to fit as PostgreSQL would."""

from __future__ import annotations

import hashlib

from psycopg import sql

from esox.persistence.errors import ProgrammingError

__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "check_identifier",
    "index_name",
    "quote",
    "truncated_identifier",
]

# PostgreSQL silently truncates longer identifiers (NAMEDATALEN - 1).
MAX_IDENTIFIER_BYTES = 63


def check_identifier(name: object, what: str) -> str:
    """Return ``name`` if it can be a PostgreSQL identifier, else ProgrammingError.

    Any characters are allowed (identifiers are always quoted), except NUL;
    names longer than 63 bytes are refused rather than silently truncated.
    """
    if not isinstance(name, str) or not name:
        msg = f"{what} must be a non-empty string, got {name!r}"
        raise ProgrammingError(msg)
    if "\x00" in name:
        msg = f"{what} {name!r} contains a NUL character"
        raise ProgrammingError(msg)
    size = len(name.encode())
    if size > MAX_IDENTIFIER_BYTES:
        msg = (
            f"{what} {name!r} is {size} bytes long; PostgreSQL identifiers are "
            f"at most {MAX_IDENTIFIER_BYTES} bytes"
        )
        raise ProgrammingError(msg)
    return name


def quote(*names: str, params: bool = False) -> str:
    """Quote a (qualified) identifier with psycopg's ``sql.Identifier``.

    With ``params``, ``%`` is doubled: the text goes into a query that psycopg
    scans for ``%s`` placeholders, and a name must never be mistaken for one.
    """
    quoted = sql.Identifier(*names).as_string(None)
    return quoted.replace("%", "%%") if params else quoted


def truncated_identifier(name: str, size: int = MAX_IDENTIFIER_BYTES) -> str:
    """``name`` cut to ``size`` bytes, whole characters (PostgreSQL cuts
    identifiers to 63 bytes)."""
    return name.encode()[:size].decode(errors="ignore")


def index_name(table_name: str, suffix: str) -> str:
    """The name of a table's index: ``table_name`` and ``suffix``, as
    eventsourcing names it, if that fits in PostgreSQL's 63 bytes; else as
    much of the table's name as fits with a hash of the whole of it.

    (PostgreSQL would cut the longer name, and cut it could be the table's
    own name, or another table's index's.)
    """
    name = table_name + suffix
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.blake2b(table_name.encode(), digest_size=4).hexdigest()
    room = MAX_IDENTIFIER_BYTES - len(suffix.encode()) - len(digest) - 1
    return f"{truncated_identifier(table_name, room)}_{digest}{suffix}"
