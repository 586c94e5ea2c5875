"""docs/api.md and docs/configuration.md say what the code has: no more, no less."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "esox"
API = ROOT / "docs" / "api.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"

MODULES = [
    "esox",
    "esox.domain",
    "esox.persistence",
    "esox.application",
    "esox.system",
    "esox.interface",
    "esox.memory",
    "esox.sqlite",
    "esox.postgres",
    "esox.testing",
    "esox.utils",
]
ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")


def documented_names() -> dict[str, list[str]]:
    """The names in the first column of each module's table in docs/api.md."""
    names: dict[str, list[str]] = {}
    module = None
    for line in API.read_text().splitlines():
        if heading := re.fullmatch(r"## `([\w.]+)`", line):
            module = heading[1]
            names[module] = []
        elif (row := re.match(r"\| `(\w+)` \|", line)) and module:
            names[module].append(row[1])
    return names


def test_api_reference_documents_every_module_it_should():
    assert list(documented_names()) == MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_api_reference_lists_exactly_the_modules_public_names(module_name: str):
    if module_name == "esox.postgres":
        pytest.importorskip("psycopg")
    module = importlib.import_module(module_name)
    documented = documented_names()[module_name]
    assert len(documented) == len(set(documented)), "a name is listed twice"
    public = set(module.__all__)
    assert sorted(public - set(documented)) == [], "missing from docs/api.md"
    assert sorted(set(documented) - public) == [], "not in the module's __all__"
    for name in public:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"


# Environment variables.


def string_constants(tree: ast.AST) -> dict[str, str]:
    """``NAME = "value"`` assignments anywhere in a module (module or class level)."""
    constants: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    constants.setdefault(target.id, value.value)
    return constants


def is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


# Environment methods that read (or name) the variable of their first argument.
ENV_READS = frozenset(
    {"get", "is_set", "source", "invalid"}
    | {
        f"read_{kind}"
        for kind in ("str", "bool", "int", "float", "duration", "choice", "path")
    }
)


def key_arguments(tree: ast.AST) -> Iterator[ast.expr]:
    """The key arguments of the environment reads in a module.

    ``<...env>.get(KEY)`` (or ``read_int(KEY)``...), ``os.environ.get(KEY)``,
    ``os.getenv(KEY)``, ``os.environ[KEY]``, and ``self.<helper>(self.KEY,
    ...)`` (the factories' helpers, ``recorder_class``... that read a key they
    are given).
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if not node.args:
                continue
            owner, first = ast.unparse(node.func.value), node.args[0]
            if (
                (node.func.attr in ENV_READS and owner.endswith(("env", "environ")))
                or (node.func.attr == "getenv" and owner == "os")
                or (
                    is_self(node.func.value)
                    and isinstance(first, ast.Attribute)
                    and is_self(first.value)
                    and ENV_NAME.fullmatch(first.attr)
                )
            ):
                yield first
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith(
            "environ"
        ):
            yield node.slice


def variables_read_by_the_package() -> dict[str, set[str]]:
    """Each environment variable the package reads, and where.

    A key given as a constant is resolved in its module, then anywhere in
    the package; an upper-case attribute defined nowhere in esox is one of
    eventsourcing's (``APPLICATION_RECORDER_TOPIC = "APPLICATION_RECORDER_TOPIC"``);
    an f-string gives a prefix (``ESOX_BENCH_*``); a function's parameter is
    read at its call sites.
    """
    trees = {path: ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")}
    anywhere: dict[str, str] = {}
    for tree in trees.values():
        for name, value in string_constants(tree).items():
            anywhere.setdefault(name, value)
    found: dict[str, set[str]] = {}
    for path, tree in trees.items():
        local = string_constants(tree)
        for key in key_arguments(tree):
            variable: str | None = None
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                variable = key.value
            elif isinstance(key, ast.JoinedStr):
                head = key.values[0]
                if isinstance(head, ast.Constant) and isinstance(head.value, str):
                    variable = f"{head.value}*"
            elif isinstance(key, ast.Name | ast.Attribute):
                name = key.id if isinstance(key, ast.Name) else key.attr
                variable = local.get(name, anywhere.get(name))
                if variable is None and isinstance(key, ast.Attribute):
                    variable = name if ENV_NAME.fullmatch(name) else None
            if variable:
                where = f"{path.relative_to(PACKAGE)}:{key.lineno}"
                found.setdefault(variable, set()).add(where)
    return found


def configuration_table_variables() -> set[str]:
    """The variables in the first column of docs/configuration.md's tables."""
    text = CONFIGURATION.read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, re.MULTILINE))


def test_the_environment_scan_finds_what_it_should():
    read = variables_read_by_the_package()
    for variable in (
        "PERSISTENCE_MODULE",  # env.get(cls.CONSTANT)
        "POSTGRES_POOL_SIZE",  # env.read_int(self.CONSTANT, ...)
        "CIPHER_OLD_KEYS",  # a ClassVar constant
        "ESOX_HTTP_TOKEN",  # os.environ.get(MODULE_CONSTANT)
        "AGGREGATE_CACHE_FASTFORWARD_SKIPPING",
    ):
        assert variable in read


def test_every_environment_variable_read_is_documented():
    documented = configuration_table_variables()
    undocumented = {
        variable: sorted(where)
        for variable, where in variables_read_by_the_package().items()
        if not (
            variable in documented
            or (
                variable.endswith("*")
                and any(d.startswith(variable[:-1]) for d in documented)
            )
        )
    }
    assert undocumented == {}, "add these to a table in docs/configuration.md"


def test_every_documented_environment_variable_is_read():
    read = variables_read_by_the_package()
    prefixes = [variable[:-1] for variable in read if variable.endswith("*")]
    stale = {
        variable
        for variable in configuration_table_variables()
        if variable not in read and not variable.startswith(tuple(prefixes))
    }
    assert stale == set(), "docs/configuration.md lists variables esox doesn't read"
