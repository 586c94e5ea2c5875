"""eventsourcing stays optional: esox never imports it unless asked to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ESOX_MODULES = [
    "esox",
    "esox.domain",
    "esox.persistence",
    "esox.application",
    "esox.memory",
    "esox.sqlite",
    "esox.dropin",
]


def python_output(code: str) -> str:
    """What ``python -c code`` prints."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def imported_after(modules: list[str]) -> list[str]:
    """The modules of eventsourcing in sys.modules after importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m == 'eventsourcing' or m.startswith('eventsourcing.'))))\n"
    )
    found: list[str] = json.loads(python_output(code))
    return found


def test_importing_esox_never_imports_eventsourcing() -> None:
    assert imported_after(ESOX_MODULES) == []


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_the_dropin_modules_import_eventsourcing(kind: str) -> None:
    assert "eventsourcing.persistence" in imported_after([f"esox.dropin.{kind}"])


def test_the_dropin_modules_say_what_to_install_without_eventsourcing() -> None:
    code = (
        "import sys\n"
        "sys.modules['eventsourcing'] = None  # as if not installed\n"
        "try:\n"
        "    import esox.dropin.sqlite\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    assert "pip install 'esox[eventsourcing]'" in python_output(code)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
@pytest.mark.parametrize("suffix", ["", ":Factory"])
def test_eventsourcing_finds_the_one_factory_of_each_module(
    kind: str, suffix: str, tmp_path: Path
) -> None:
    from eventsourcing.persistence import InfrastructureFactory

    factory = InfrastructureFactory.construct(
        {
            "PERSISTENCE_MODULE": f"esox.dropin.{kind}{suffix}",
            "SQLITE_DBNAME": str(tmp_path / "db.sqlite"),
            "POSTGRES_DBNAME": "not-connected-until-used",
        }
    )
    assert type(factory).__module__ == f"esox.dropin.{kind}"
    factory.close()
