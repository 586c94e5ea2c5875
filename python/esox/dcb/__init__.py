"""Dynamic consistency boundaries (DCB), with the names of ``eventsourcing.dcb``.

So far: the API (``esox.dcb.api``) and the in-memory recorder in Rust
(``esox.dcb.memory``, also ``esox.dcb.popo``). See docs/dcb.md.
"""
