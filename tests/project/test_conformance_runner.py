"""The conformance runner itself (tests/conformance): the rewrite rules, the
classification of outcomes, the gate, and the pytest plugin, on tiny fakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import compare as cmp
from tests.conformance.inventory import helper_drift, references
from tests.conformance.rewrite import rewrite_doc, rewrite_python
from tests.conformance.run import build_corpus_copy, pass_env, run_side

# --- rewrite rules -------------------------------------------------------------


def test_rewrites_every_form_of_import() -> None:
    source = (
        "import eventsourcing\n"
        "import eventsourcing.domain\n"
        "import eventsourcing.cipher as pycryptodome\n"
        "from eventsourcing import cryptography\n"
        "from eventsourcing.tests.persistence import tmpfile_uris\n"
        "from eventsourcing.application import (\n"
        "    Application,\n"
        ")\n"
    )
    assert rewrite_python(source) == (
        "import esox\n"
        "import esox.domain\n"
        "import esox.cipher as pycryptodome\n"
        "from esox import cryptography\n"
        "from esox.tests.persistence import tmpfile_uris\n"
        "from esox.application import (\n"
        "    Application,\n"
        ")\n"
    )


def test_rewrites_references_to_the_imported_module() -> None:
    source = (
        "base_dir = Path(eventsourcing.__file__)\n"
        "eventsourcing.domain.TZINFO = tz\n"
        'register_topic("oldpackage", eventsourcing)\n'
    )
    assert rewrite_python(source) == (
        "base_dir = Path(esox.__file__)\n"
        "esox.domain.TZINFO = tz\n"
        'register_topic("oldpackage", esox)\n'
    )


def test_rewrites_module_names_and_topics_in_string_literals() -> None:
    source = (
        'env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"\n'
        "topic = 'eventsourcing.cipher:AESCipher'\n"
        "message = \"Not a follower class: <class 'eventsourcing.system.Leader'>\"\n"
        'line = f"from eventsourcing.domain import {name}"\n'
        'doc = """\n  eventsourcing.popo\n"""\n'
    )
    assert rewrite_python(source) == (
        'env["PERSISTENCE_MODULE"] = "esox.sqlite"\n'
        "topic = 'esox.cipher:AESCipher'\n"
        "message = \"Not a follower class: <class 'esox.system.Leader'>\"\n"
        'line = f"from esox.domain import {name}"\n'
        'doc = """\n  esox.popo\n"""\n'
    )


def test_never_rewrites_other_text() -> None:
    source = (
        "# from eventsourcing.domain import Aggregate (a comment)\n"
        'dbname = "eventsourcing"  # the database, role and password names\n'
        'msg = "eventsourcing.module isn\'t checking for redefined names"\n'
        'register_topic("old.eventsourcing.domain", x)\n'
        "import eventsourcing_kurrentdb\n"
        "value = settings.eventsourcing\n"
        'url = "https://eventsourcing.readthedocs.io/"\n'
    )
    assert rewrite_python(source) == source


def test_rewrites_the_code_blocks_of_docs_and_nothing_else() -> None:
    rst = (
        "Import it with ``from eventsourcing.domain import Aggregate``.\n"
        "\n"
        ".. code-block:: python\n"
        "    :emphasize-lines: 2\n"
        "\n"
        "    from eventsourcing.domain import Aggregate\n"
        '    os.environ["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"\n'
        "\n"
        "from eventsourcing.domain import Aggregate is prose here\n"
    )
    assert rewrite_doc(rst, markdown=False) == rst.replace(
        "    from eventsourcing.domain", "    from esox.domain"
    ).replace('"eventsourcing.sqlite"', '"esox.sqlite"')
    md = (
        "Use eventsourcing.application here.\n"
        "```python\n"
        "from eventsourcing.application import Application\n"
        "```\n"
        "from eventsourcing.application import Application\n"
    )
    assert rewrite_doc(md, markdown=True) == (
        "Use eventsourcing.application here.\n"
        "```python\n"
        "from esox.application import Application\n"
        "```\n"
        "from eventsourcing.application import Application\n"
    )


def test_the_corpus_copy_ports_only_for_esox(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "tests" / "domain_tests").mkdir(parents=True)
    test_file = corpus / "tests" / "domain_tests" / "test_x.py"
    test_file.write_text(
        'from eventsourcing.domain import Aggregate\nX = "eventsourcing"\n'
    )
    (corpus / "README.md").write_text("```python\nimport eventsourcing\n```\n")
    build_corpus_copy(corpus, tmp_path / "control", esox=False)
    build_corpus_copy(corpus, tmp_path / "esox", esox=True)
    control = tmp_path / "control" / "tests" / "domain_tests" / "test_x.py"
    ported = tmp_path / "esox" / "tests" / "domain_tests" / "test_x.py"
    assert control.read_text() == test_file.read_text()
    assert (
        ported.read_text() == 'from esox.domain import Aggregate\nX = "eventsourcing"\n'
    )
    assert (
        tmp_path / "esox" / "README.md"
    ).read_text() == "```python\nimport esox\n```\n"


# --- classification and gate ---------------------------------------------------

P, F, S = (
    {"outcome": "passed"},
    {"outcome": "failed", "message": "boom"},
    {"outcome": "skipped"},
)


@pytest.mark.parametrize(
    ("control", "esox", "category"),
    [
        (P, P, cmp.BOTH_PASSED),
        (P, F, cmp.ESOX_FAILED),
        (P, S, cmp.ESOX_FAILED),  # a test skipped on esox does not pass there
        (P, {"outcome": "missing"}, cmp.ESOX_FAILED),
        (F, F, cmp.BOTH_FAILED),
        (F, P, cmp.ESOX_ONLY_PASSED),
        (S, P, cmp.NOT_COMPARABLE),
        ({"outcome": "deferred"}, F, cmp.DEFERRED),
    ],
)
def test_classification(control: dict, esox: dict, category: str) -> None:
    assert cmp.classify(control, esox) == category


def test_a_collection_error_fails_every_test_of_its_module() -> None:
    control = {"tests/a/test_m.py::T::test_1": P, "tests/a/test_m.py::T::test_2": P}
    errors = {
        "tests/a/test_m.py": "ImportError: cannot import name 'X' from 'esox.y' (/y.py)"
    }
    comparison = cmp.compare(control, {}, errors)
    assert comparison.totals[cmp.ESOX_FAILED] == 2
    assert comparison.tests["tests/a/test_m.py::T::test_1"]["esox"] == "collect-error"
    assert cmp.failure_causes(comparison) == [
        ("ImportError: cannot import name 'X' from 'esox.y'", 2)
    ]


def _comparison() -> cmp.Comparison:
    control = {f"m.py::test_{i}": P for i in range(5)} | {"m.py::test_broken": F}
    esox = {
        "m.py::test_0": P,
        "m.py::test_1": F,  # pending
        "m.py::test_2": F,  # known difference (by prefix)
        "m.py::test_3": F,  # a regression
        "m.py::test_4": P,  # pending, now passing
        "m.py::test_broken": F,
    }
    return cmp.compare(control, esox, {})


def test_gate_fails_on_a_regression_only() -> None:
    known = [cmp.KnownDifference(test="m.py::test_2*", reason="deliberate")]
    result = cmp.gate(
        _comparison(), known, ["m.py::test_1", "m.py::test_4", "m.py::gone"]
    )
    assert result.unexplained == ["m.py::test_3"]
    assert result.pending_failing == ["m.py::test_1"]
    assert result.known_failing == [("m.py::test_2", "deliberate")]
    assert result.pending_now_passing == ["m.py::test_4"]
    assert result.pending_unknown == ["m.py::gone"]
    assert not result.ok(strict=False)


def test_gate_passes_with_everything_explained_and_strict_flags_stale_pending() -> None:
    known = [cmp.KnownDifference(test="m.py::test_2", reason="deliberate")]
    result = cmp.gate(
        _comparison(), known, ["m.py::test_1", "m.py::test_3", "m.py::test_4"]
    )
    assert result.unexplained == []
    assert result.ok(strict=False)
    assert not result.ok(strict=True)  # test_4 passes: remove it from pending.txt


def test_pending_is_generated_from_the_failures_less_known_differences() -> None:
    known = [cmp.KnownDifference(test="m.py::test_2", reason="deliberate")]
    assert cmp.pending_from(_comparison(), known) == ["m.py::test_1", "m.py::test_3"]


def test_known_differences_need_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "known.toml"
    path.write_text('[[difference]]\ntest = "m.py::test_2"\nreason = "better"\n')
    assert cmp.load_known_differences(path) == [
        cmp.KnownDifference(test="m.py::test_2", reason="better")
    ]
    path.write_text('[[difference]]\ntest = "m.py::test_2"\n')
    with pytest.raises(ValueError, match=r"needs both 'test'.*and 'reason'"):
        cmp.load_known_differences(path)


def test_pending_file_ignores_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "pending.txt"
    path.write_text("# header\n\nm.py::test_1\n  m.py::test_3  \n")
    assert cmp.load_pending(path) == ["m.py::test_1", "m.py::test_3"]


# --- the pytest plugin and crash recovery -------------------------------------


def run_tree(
    tmp_path: Path,
    tests: dict[str, str],
    timeout: int = 30,
    deferred: tuple[tuple[str, str], ...] = (),
    **options: Any,
) -> tuple[dict[str, Any], dict[str, str]]:
    """run_side on a tree of the given test files (under tests/): its outcomes
    and collection errors."""
    tree = tmp_path / "tree"
    (tree / "tests").mkdir(parents=True)
    (tree / "pytest.ini").write_text("[pytest]\n")
    for name, code in tests.items():
        (tree / "tests" / name).write_text(code)
    outcomes, errors, _ = run_side(
        "fake",
        tree,
        ["tests"],
        timeout,
        (),
        work_dir=tmp_path / "work",
        deferred=deferred,
        lock=False,
        **options,
    )
    return outcomes, errors


def test_run_side_records_outcomes_and_survives_a_crash(tmp_path: Path) -> None:
    deferred = (("tests/test_a.py::test_deferred", "later"),)
    tests, errors = run_tree(
        tmp_path,
        {
            "test_a.py": "import os, pytest\n"
            "def test_pass(): pass\n"
            "def test_fail(): assert 1 == 2, 'one is not two'\n"
            "def test_skip(): pytest.skip('not here')\n"
            "def test_crash(): os._exit(3)\n"
            "def test_after_crash(): pass\n"
            "def test_interrupt(): raise KeyboardInterrupt\n"
            "def test_after_interrupt(): pass\n"
            "def test_deferred(): assert False\n",
            "test_b.py": "import no_such_module_anywhere\n",
        },
        deferred=deferred,
    )
    outcomes = {nodeid.split("::")[1]: r["outcome"] for nodeid, r in tests.items()}
    assert outcomes == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_skip": "skipped",
        "test_crash": "crashed",
        "test_after_crash": "passed",
        "test_interrupt": "crashed",
        "test_after_interrupt": "passed",
        "test_deferred": "deferred",
    }
    assert "one is not two" in tests["tests/test_a.py::test_fail"]["message"]
    assert tests["tests/test_a.py::test_interrupt"]["message"] == (
        "the pytest process was interrupted in this test"
    )
    assert errors["tests/test_b.py"].startswith("ModuleNotFoundError")


def test_the_plugin_imports_neither_library() -> None:
    code = (
        "import sys; sys.path.insert(0, 'tests/conformance'); import plugin; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('esox', 'eventsourcing'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert json.loads(out.stdout) == []


def test_a_module_stops_running_after_its_share_of_timeouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ESOX_CONFORMANCE_MODULE_TIMEOUTS", "1")
    tests, _ = run_tree(
        tmp_path,
        {
            "test_hang.py": "import time\n"
            "def test_hangs(): time.sleep(30)\n"
            "def test_would_hang_too(): time.sleep(30)\n",
            "test_other.py": "def test_fine(): pass\n",
        },
        timeout=1,
    )
    assert tests["tests/test_hang.py::test_hangs"]["outcome"] == "failed"
    assert "Timeout" in tests["tests/test_hang.py::test_hangs"]["message"]
    assert tests["tests/test_hang.py::test_would_hang_too"]["outcome"] == "failed"
    assert tests["tests/test_hang.py::test_would_hang_too"]["message"] == (
        "not run: 1 tests of this module timed out"
    )
    assert tests["tests/test_other.py::test_fine"]["outcome"] == "passed"


# --- inventory ------------------------------------------------------------------


def test_inventory_finds_imports_attribute_chains_and_topics() -> None:
    source = (
        "import eventsourcing.domain\n"
        "from eventsourcing.tests.persistence import tmpfile_uris\n"
        "from eventsourcing import cryptography\n"
        "x = eventsourcing.domain.TZINFO\n"
        'env = {"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher"}\n'
        'dbname = "eventsourcing"\n'
    )
    assert references(source) == {
        ("domain", ""),
        ("domain", "TZINFO"),
        ("tests.persistence", ""),
        ("tests.persistence", "tmpfile_uris"),
        ("", ""),
        ("", "cryptography"),
        ("cipher", "AESCipher"),
    }


def test_helper_drift_compares_esox_tests_with_the_port_of_eventsourcings(
    tmp_path: Path,
) -> None:
    control, esox = tmp_path / "control", tmp_path / "esox"
    (control / "eventsourcing" / "tests").mkdir(parents=True)
    (esox / "esox" / "tests").mkdir(parents=True)
    original = "from eventsourcing.domain import Aggregate\nclass Case: pass\n"
    for name in ("domain", "persistence"):
        (control / "eventsourcing" / "tests" / f"{name}.py").write_text(original)
    (esox / "esox" / "tests" / "domain.py").write_text(rewrite_python(original))
    refs = {("tests.domain", "X"): {"a"}, ("tests.persistence", ""): {"b"}}
    refs |= {("tests.application", ""): {"c"}}
    (esox / "esox" / "tests" / "persistence.py").write_text(
        rewrite_python(original) + "class Extra: pass\n"
    )
    drift = dict(helper_drift(refs, control, esox))
    assert drift["esox.tests.domain"] == "the port of eventsourcing 9.5.6's, unchanged"
    assert drift["esox.tests.persistence"].startswith("1 lines added or removed")
    assert drift["esox.tests.application"] == "missing"


def test_a_pass_puts_its_settings_back_before_each_test(tmp_path: Path) -> None:
    tests, _ = run_tree(
        tmp_path,
        {
            "test_env.py": "import os\n"
            "def test_1_deletes_it(): del os.environ['PERSISTENCE_MODULE']\n"
            "def test_2_sees_it_again():\n"
            "    assert os.environ['PERSISTENCE_MODULE'] == 'esox.sqlite'\n"
        },
        extra_env=pass_env("sqlite", "esox")
        | {"ESOX_CONFORMANCE_PASS_ENV": json.dumps(pass_env("sqlite", "esox"))},
    )
    assert {r["outcome"] for r in tests.values()} == {"passed"}


def test_known_differences_and_pending_apply_per_pass() -> None:
    control = {"m.py::t": P, "[sqlite] m.py::t": P, "[sqlite] m.py::u": P}
    esox = {"m.py::t": F, "[sqlite] m.py::t": F, "[sqlite] m.py::u": F}
    comparison = cmp.compare(control, esox, {})
    known = [cmp.KnownDifference(test="m.py::t", reason="deliberate, everywhere")]
    result = cmp.gate(comparison, known, [])
    assert sorted(n for n, _ in result.known_failing) == ["[sqlite] m.py::t", "m.py::t"]
    assert result.unexplained == ["[sqlite] m.py::u"]
    assert cmp.pass_of("[sqlite] m.py::u") == "sqlite"
    assert cmp.pass_of("m.py::u") == "popo"


@pytest.mark.parametrize(
    ("pattern", "nodeid", "expected"),
    [
        ("m.py::TestA::test_x", "m.py::TestA::test_x", True),
        ("m.py::TestA::test_x", "m.py::TestA::test_xy", False),
        ("m.py::TestA*", "m.py::TestAB::test_y", True),
        ("m.py::Test*::test_x", "m.py::TestAB::test_x", True),
        ("m.py::Test*::test_x", "m.py::TestAB::test_xy", False),
        ("m.py::Test*::test_x", "n.py::TestAB::test_x", False),
        ("m.py::test[a*]", "m.py::test[a-b]", True),  # brackets are literal
        ("m.py::test[a]", "m.py::testa", False),
    ],
)
def test_a_known_difference_names_tests_with_stars(
    pattern: str, nodeid: str, expected: bool
) -> None:
    assert cmp.matches(nodeid, pattern) is expected
