"""The workloads of ``esox bench``: one definition each, shared with the
pytest-benchmark suites in ``benches/``."""

from __future__ import annotations

from esox.bench.harness import Workload
from esox.bench.plan import Plan
from esox.bench.workloads import (
    application,
    concurrent,
    dcb,
    mapper,
    partitions,
    recorders,
    writers,
)

__all__ = ["FAMILIES", "all_workloads"]

FAMILIES = (
    "mapper encode",
    "mapper decode",
    "recorder insert",
    "concurrent insert",
    "pg writers",
    "recorder select",
    "notification select",
    "application save",
    "repository get",
    "follower processing",
    "partitions",
    "dcb",
)


def all_workloads(plan: Plan) -> list[Workload]:
    """Every workload of the plan, in the order of ``FAMILIES``."""
    found = mapper.workloads(plan) + recorders.workloads(plan)
    found += concurrent.workloads(plan)
    found += writers.workloads(plan)
    found += application.workloads(plan)
    found += partitions.workloads(plan)
    found += dcb.workloads(plan)
    order = {family: i for i, family in enumerate(FAMILIES)}
    return sorted(found, key=lambda w: order[w.family])
