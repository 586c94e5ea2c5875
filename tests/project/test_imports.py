"""The library is the library: importing a layer loads that layer and what it
uses, and nothing of the benchmark, the examples or their dependencies."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import esox

# What the library itself never imports (esox[bench], esox's tests, examples).
OPTIONAL = ("esox.bench", "esox.examples", "pytest", "matplotlib", "eventsourcing")


def loaded_after(code: str) -> list[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def esox_modules(loaded: list[str]) -> set[str]:
    return {m for m in loaded if m == "esox" or m.startswith("esox.")}


def test_import_esox_loads_no_layer_until_a_name_is_used():
    assert esox_modules(loaded_after("import esox")) == {"esox"}
    loaded = loaded_after("from esox import Aggregate")
    assert "esox.application" not in loaded
    assert "esox._core" not in loaded


def test_import_esox_domain_loads_the_domain_layer_only():
    modules = esox_modules(loaded_after("import esox.domain"))
    assert modules == {
        "esox",
        "esox.domain",
        "esox.domain.aggregate",
        "esox.domain.decorators",
        "esox.domain.events",
        "esox.domain.preparation",
        "esox.domain.protocols",
        "esox.utils",
    }


def test_the_lazy_names_are_the_layers_own():
    from esox.application import AggregateNotFoundError, Application
    from esox.domain import Aggregate, event

    assert esox.Aggregate is Aggregate
    assert esox.event is event
    assert esox.Application is Application
    assert esox.AggregateNotFoundError is AggregateNotFoundError
    assert set(esox.__all__) <= set(dir(esox))


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="'Aggregat'"):
        esox.Aggregat


def test_no_module_of_the_core_imports_the_benchmark_or_its_dependencies():
    core = sorted(
        m.name
        for m in pkgutil.walk_packages(esox.__path__, "esox.")
        if not m.name.startswith(("esox.bench", "esox.examples"))
        # The drop-ins and the testing cases exist to import eventsourcing
        # and pytest; the postgres module needs psycopg, present here.
        and not m.name.startswith(("esox.dropin", "esox.testing"))
        and m.name != "esox.__main__"
    )
    loaded = loaded_after("\n".join(f"import {m}" for m in core))
    assert [m for m in loaded if m.startswith(OPTIONAL)] == []
