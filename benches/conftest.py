"""Shared set-up for the side-by-side benchmarks (esox against eventsourcing 9.x)."""

from __future__ import annotations

import os

# eventsourcing refuses to define an aggregate class twice in one module; the
# benchmarks define twins of the same classes for both libraries.
os.environ.setdefault("EVENTSOURCING_DISABLE_REDEFINITION_CHECK", "y")
