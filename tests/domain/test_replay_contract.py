"""The Rust/Python boundary: what esox hands esox._core, and the replay contract.

The crate imports no esox module; esox.persistence.binding hands it what it
needs in one ``_core._bind`` call, and esox.domain.contract lists what
replay reads of esox.domain. These tests fail when either side renames or
changes one of those things without the other.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from esox import _core
from esox.domain import AggregateCreated
from esox.domain.contract import NAMES, REIMPLEMENTED, fingerprint, objects
from esox.persistence import binding
from tests.domain.test_replay import Kennel

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "esox"


def full_bindings() -> dict[str, Any]:
    return binding.bindings()


@pytest.mark.parametrize("topic", sorted(REIMPLEMENTED))
def test_what_rust_reimplements_has_not_changed(topic: str) -> None:
    assert fingerprint(topic) == REIMPLEMENTED[topic], (
        f"{topic} changed: rust/replay.rs does what it does (or relies on it). "
        "Make Rust do the same, then update its fingerprint in "
        "esox/domain/contract.py REIMPLEMENTED."
    )


def test_rust_takes_exactly_the_keys_python_passes() -> None:
    # A complete set of keys passes Rust's check and is then refused only
    # because the module is bound already.
    assert _core._is_bound()
    with pytest.raises(RuntimeError, match="already bound"):
        _core._bind(full_bindings())


@pytest.mark.parametrize(
    ("section", "key"),
    [
        (None, "AESCipher"),
        ("errors", "IntegrityError"),
        ("replay_names", "decorated_spec"),
        ("replay_names", "init_spec"),
        ("replay_objects", "created_mutate"),
    ],
)
def test_a_missing_key_fails_the_bind_naming_it(section: str | None, key: str) -> None:
    bindings = full_bindings()
    del (bindings if section is None else bindings[section])[key]
    with pytest.raises(TypeError, match=re.escape(repr(key))):
        _core._bind(bindings)


@pytest.mark.parametrize("section", [None, "errors", "replay_names", "replay_objects"])
def test_an_unknown_key_fails_the_bind_naming_it(section: str | None) -> None:
    bindings = full_bindings()
    (bindings if section is None else bindings[section])["renamed"] = "x"
    with pytest.raises(TypeError, match="unknown keys: 'renamed'"):
        _core._bind(bindings)


def test_a_name_of_the_wrong_type_is_refused() -> None:
    bindings = full_bindings()
    bindings["replay_names"]["version"] = 1
    with pytest.raises(TypeError, match=r"replay_names\['version'\] must be a str"):
        _core._bind(bindings)


def test_each_name_is_where_replay_reads_it() -> None:
    shelf = Kennel("a")
    shelf.admit("b")
    created, added = shelf.collect_events()
    assert isinstance(created, AggregateCreated)
    # Events: their attributes and methods.
    for name in ("originator_id", "originator_version", "timestamp"):
        assert NAMES[name] in vars(added)
    assert NAMES["originator_topic"] in vars(created)
    for name in ("mutate", "apply", "as_dict"):
        assert callable(getattr(type(added), NAMES[name]))
    # The decorated method's event class and its spec.
    spec = getattr(type(added), NAMES["decorated_spec"])
    assert getattr(spec, NAMES["spec_func"]).__name__ == "admit"
    assert getattr(spec, NAMES["spec_names"]) == ("dog",)
    # The aggregate class, as set_init leaves it.
    assert getattr(Kennel, NAMES["init_params"]) == ("name", "dogs")
    assert callable(getattr(Kennel, NAMES["init_func"]))
    assert getattr(Kennel, NAMES["init_mentions_id"]) is False
    init_spec = getattr(Kennel, NAMES["init_spec"])
    assert list(getattr(init_spec, NAMES["spec_factories"])) == ["dogs"]
    assert callable(getattr(Kennel, NAMES["base_init"]))
    # The aggregate's state behind its properties.
    state = vars(shelf)
    assert state[NAMES["id"]] is shelf.id
    assert state[NAMES["version"]] == shelf.version == 2
    assert state[NAMES["modified_on"]] == shelf.modified_on


def test_the_objects_are_what_esox_domain_uses() -> None:
    found = objects()
    shelf = Kennel("c")
    shelf.admit("d")
    created, added = (type(e) for e in shelf.collect_events())
    assert created.mutate is found["created_mutate"]
    assert added.mutate is found["can_mutate_mutate"]
    assert added.apply is found["decorated_apply"]
    assert issubclass(added, found["decorated_caller"])
    assert created._as_dict is found["base_as_dict"]
    assert issubclass(Kennel, found["base_aggregate"])


@pytest.mark.skipif(not (ROOT / "rust").is_dir(), reason="needs the source tree")
def test_rust_names_no_private_attribute_of_esox_domain() -> None:
    # Private names reach rust/replay through the contract, not as literals.
    sources = [
        ROOT / "rust" / "replay.rs",
        *sorted((ROOT / "rust" / "replay").glob("*.rs")),
    ]
    literals = {
        literal
        for path in sources
        for literal in re.findall(r'"(_[A-Za-z0-9_]+)"', path.read_text())
    }
    assert literals - {"__dict__", "__new__"} == set()


@pytest.mark.skipif(not (ROOT / "rust").is_dir(), reason="needs the source tree")
def test_the_crate_imports_no_esox_module() -> None:
    imports = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in sorted((ROOT / "rust").rglob("*.rs"))
        for line in path.read_text().splitlines()
        if re.search(r'(import|intern!)\(.*"esox[."]', line)
    ]
    assert imports == []


def modules_using_core() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if re.search(r"^from esox(\._core| import _core)\b", path.read_text(), re.M):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


@pytest.mark.parametrize("module", modules_using_core())
def test_importing_any_user_of_core_binds_it(module: str) -> None:
    if module.startswith(("esox.dropin", "esox.postgres")):
        pytest.importorskip("eventsourcing" if "dropin" in module else "psycopg")
    code = f"import {module}; from esox import _core; print(_core._is_bound())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"


def test_before_the_bind_rust_errors_still_say_what_failed() -> None:
    # esox._core loaded alone (its package replaced by an empty one).
    code = (
        "import sys, types; pkg = types.ModuleType('esox'); "
        f"pkg.__path__ = [{str(PACKAGE)!r}]; sys.modules['esox'] = pkg; "
        "from esox import _core; assert not _core._is_bound()\n"
        "try:\n    _core.zlib_decompress(b'not zlib')\n"
        "except RuntimeError as e:\n    print(e)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("MapperDeserialisationError: not zlib data")
    assert "not bound" in result.stdout
