"""Run eventsourcing 9.5's tests, examples and docs on esox and on eventsourcing.

    python -m tests.conformance.run [--corpus DIR] [--strict] [--update] ...

Builds two trees under build/conformance/: `control` (the corpus unchanged,
run on eventsourcing 9.5.6) and `esox` (the corpus ported by
tests/conformance/rewrite.py), runs pytest on each in its own subprocess with
a per-test timeout, compares per test, prints a per-module table, writes
build/conformance/report.json, and gates: exit status 1 if a test that passes
on the control fails on esox and is neither a known difference
(known_differences.toml) nor pending (pending.txt). See README.md beside.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from tests.conformance import compare as cmp  # noqa: E402
from tests.conformance import inventory  # noqa: E402
from tests.conformance.report import print_report  # noqa: E402
from tests.conformance.rewrite import rewrite_doc, rewrite_python  # noqa: E402

DEFAULT_CORPUS = REPO / ".." / "shared" / "conformance" / "eventsourcing-9.5"
BUILD = REPO / "build" / "conformance"
KNOWN_DIFFERENCES = HERE / "known_differences.toml"
PENDING = HERE / "pending.txt"
RUN_PATHS = ("tests", "examples")
PLUGIN_NAME = "esox_conformance_plugin"
DOCS_HARNESS = "tests/docs_tests/test_conformance_docs.py"
INTERRUPTED = 2  # pytest.ExitCode.INTERRUPTED
# pytest.ExitCode.INTERNAL_ERROR: pytest itself failed, e.g. formatting a
# failure (CPython 3.11's "AST constructor recursion depth mismatch" after a
# deep recursion); the run goes on without the test it happened in.
INTERNAL_ERROR = 3
LOCK = Path("/tmp/esox-conformance-postgres.lock")  # the databases are shared

# (node-id pattern, note): deselected on both sides, reported as deferred.
DEFERRED: tuple[tuple[str, str], ...] = (
    (
        "tests/docs_tests/test_docs.py::TestDocs::test_docs",
        "replaced by one test per file in " + DOCS_HARNESS,
    ),
)
# Not collected on esox at all.
ESOX_IGNORE: tuple[str, ...] = ()

# Control-only shim: eventsourcing 9.5.6's own eventsourcing/tests/postgres_utils.py
# imports five table-name constants from an example the corpus (an earlier
# snapshot of the 9.5 branch) does not have yet; their values are those of the
# corpus's examples/coursebookingdcb/postgres_ts.py.
CONTROL_SHIMS = {
    "examples/dcb_enrolment_with_basic_objects/__init__.py": "",
    "examples/dcb_enrolment_with_basic_objects/postgres_ts.py": (
        '"""Conformance-runner shim: what eventsourcing.tests.postgres_utils '
        'imports."""\n'
        'PG_TYPE_NAME_DCB_EVENT_TS = "dcb_event"\n'
        'PG_FUNCTION_NAME_DCB_SELECT_EVENTS_TS = "dcb_select_events"\n'
        "PG_FUNCTION_NAME_DCB_CHECK_APPEND_CONDITION_TS = "
        '"dcb_check_append_condition"\n'
        'PG_FUNCTION_NAME_DCB_INSERT_EVENTS_TS = "dcb_insert_events"\n'
        'PG_PROCEDURE_NAME_DCB_APPEND_EVENTS_TS = "dcb_append_events"\n'
    ),
}
# The esox tree's own shims, each written only where the library has no such
# module (none now: esox.dcb.postgres_tt has the names postgres_utils imports).
ESOX_SHIMS: dict[str, str] = {}
PYTEST_INI = "[pytest]\npython_files = test_*.py\naddopts = -p no:cacheprovider\n"
# Settings a developer's shell may hold that would change what the tests do.
_ENV_DROP = re.compile(
    r"^(PERSISTENCE_MODULE|.*_PERSISTENCE_MODULE|.*POSTGRES_.*|.*SQLITE_.*|CREATE_TABLE"
    r"|.*_TOPIC|CIPHER_KEY|IS_SNAPSHOTTING_ENABLED|EVENTSOURCING_.*|PYTEST_ADDOPTS)$"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def corpus_hash(corpus: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(corpus)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def runner_hash(timeout: float) -> str:
    """What else decides the control's outcomes: harness, plugin, shims, settings."""
    digest = hashlib.sha256()
    for name in ("plugin.py", "docs_harness.py"):
        digest.update((HERE / name).read_bytes())
    digest.update(json.dumps([CONTROL_SHIMS, DEFERRED, PYTEST_INI, timeout]).encode())
    return digest.hexdigest()[:16]


def _package_dir(name: str) -> Path:
    out = subprocess.run(
        [sys.executable, "-c", f"import {name}; print({name}.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return Path(out.stdout.strip()).resolve().parent


def build_corpus_copy(corpus: Path, dest: Path, *, esox: bool) -> None:
    """The corpus files under dest: unchanged for the control, ported for esox."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for path in sorted(corpus.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        target = dest / path.relative_to(corpus)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif esox and path.suffix == ".py":
            text = path.read_text(encoding="utf-8")
            target.write_text(rewrite_python(text), encoding="utf-8")
        elif esox and path.suffix in {".rst", ".md"}:
            text = path.read_text(encoding="utf-8")
            target.write_text(rewrite_doc(text, path.suffix == ".md"), encoding="utf-8")
        else:
            shutil.copyfile(path, target)


def build_tree(
    corpus: Path, dest: Path, *, esox: bool, package_dir: Path | None = None
) -> None:
    """The corpus copy, the library package itself beside it (so that docs_tests'
    base_dir, the library's parent folder, is the tree), shims and the harness.
    package_dir: the library package to copy (default: the one the venv imports)."""
    build_corpus_copy(corpus, dest, esox=esox)
    package = "esox" if esox else "eventsourcing"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    source = package_dir or _package_dir(package)
    if (dest / package).exists():  # never part of the corpus, but be sure
        shutil.rmtree(dest / package)
    shutil.copytree(source, dest / package, ignore=ignore)
    shims = dict(CONTROL_SHIMS)
    if esox:
        port_test_helpers(dest / package / "tests")
        shims = {rel: rewrite_python(text) for rel, text in shims.items()}
        shims |= {rel: t for rel, t in ESOX_SHIMS.items() if not (dest / rel).exists()}
    for rel, text in shims.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text, encoding="utf-8")
    shutil.copyfile(HERE / "docs_harness.py", dest / DOCS_HARNESS)
    (dest / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")


def port_test_helpers(dest: Path) -> None:
    """eventsourcing's test helpers (``eventsourcing.tests``: BSD-3, shipped in
    its package, imported by the corpus), ported by the same rules as the
    corpus into the esox tree's copy of the library, unless esox has its own.
    They hold test logic the corpus inherits, so they are ported, not written
    again; they never go into the library itself."""
    if dest.exists():
        return
    source = _package_dir("eventsourcing") / "tests"
    dest.mkdir(parents=True)
    for path in sorted(source.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        (dest / path.name).write_text(rewrite_python(text), encoding="utf-8")


@contextlib.contextmanager
def database_lock() -> Iterator[None]:
    with open(LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for {LOCK}: another conformance run is using the databases")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_side(
    name: str,
    tree: Path,
    paths: list[str],
    timeout: float,
    extra_args: tuple[str, ...],
    *,
    work_dir: Path = BUILD,
    deferred: tuple[tuple[str, str], ...] = DEFERRED,
    lock: bool = True,
    extra_env: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str], float]:
    """pytest on a tree; restarts after a crash without the tests already run."""
    out_dir = work_dir / f"{name}-run"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    plugin_dir = work_dir / "_plugin"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "plugin.py", plugin_dir / f"{PLUGIN_NAME}.py")
    env = {k: v for k, v in os.environ.items() if not _ENV_DROP.match(k)}
    env.update(
        CI="true",
        PYTHONPATH=str(plugin_dir),
        ESOX_CONFORMANCE_DEFERRED=json.dumps(deferred),
        ESOX_CONFORMANCE_EXCLUDE=str(out_dir / "exclude.txt"),
    )
    env.update(extra_env or {})
    records: list[dict[str, Any]] = []
    started = time.monotonic()
    for attempt in range(1, 11):
        out = out_dir / f"records-{attempt}.jsonl"
        env["ESOX_CONFORMANCE_OUT"] = str(out)
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            PLUGIN_NAME,
            "-q",
            "--tb=short",
            f"--timeout={timeout:g}",
            "--timeout-method=signal",
            "--continue-on-collection-errors",
            *extra_args,
            *paths,
        ]
        locked = database_lock() if lock else contextlib.nullcontext()
        with open(out_dir / f"pytest-{attempt}.log", "w") as output, locked:
            code = subprocess.run(
                command,
                cwd=tree,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        new = (
            [json.loads(line) for line in out.read_text().splitlines()]
            if out.exists()
            else []
        )
        records.extend(new)
        finished = [r for r in new if r["outcome"] == "session-finished"]
        # pytest's exit status 2: interrupted (a test raised KeyboardInterrupt);
        # 3: pytest's internal error. Either ends the session early.
        status = finished[-1].get("exitstatus") if finished else None
        interrupted = status in (INTERRUPTED, INTERNAL_ERROR)
        if finished and not interrupted:
            break
        done = {
            r["nodeid"]
            for r in records
            if r["outcome"] not in {"started", "collect-error", "session-finished"}
        }
        stopped_in = [
            r["nodeid"]
            for r in new
            if r["outcome"] == "started" and r["nodeid"] not in done
        ]
        how = "was interrupted" if interrupted else f"died (exit status {code})"
        log(f"{name}: the pytest process {how} in {stopped_in} (attempt {attempt})")
        if not stopped_in:
            break  # nothing ran that could be skipped next time
        for nodeid in stopped_in:
            records.append(
                {
                    "nodeid": nodeid,
                    "outcome": "crashed",
                    "message": f"the pytest process {how} in this test",
                }
            )
            done.add(nodeid)
        (out_dir / "exclude.txt").write_text("\n".join(sorted(done)) + "\n")
    tests, collect_errors = cmp.merge_records(records)
    return tests, collect_errors, time.monotonic() - started


_BACKEND_MARKERS = {
    "postgres": re.compile(r"postgres", re.IGNORECASE),
    "sqlite": re.compile(r"sqlite", re.IGNORECASE),
    "popo": re.compile(r"popo", re.IGNORECASE),
}


def backends_of(corpus: Path, module: str) -> str:
    """Static scan: the persistence modules a test module names (POPO: default)."""
    path = corpus / module
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    found = [name for name, pattern in _BACKEND_MARKERS.items() if pattern.search(text)]
    if not found and re.search(r"application|runner|system|repository", text, re.I):
        found = ["popo (default)"]
    return ", ".join(found) or "-"


# Passes: the whole tree with each default persistence module. Tests that choose
# their own persistence do so in every pass; the others use the pass's.
PG_SETTINGS = {
    "POSTGRES_DBNAME": "eventsourcing",
    "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_PORT": "5432",
    "POSTGRES_USER": "eventsourcing",
    "POSTGRES_PASSWORD": "eventsourcing",
}
PASSES = ("popo", "sqlite", "postgres")
# Failed tests are run once more, in a fresh process, when there are few: a
# test that passes then counts as passed and is listed as flaky in the report.
RERUN_OUTCOMES = frozenset({"failed", "error", "crashed"})
RERUN_AT_MOST = 60


def pass_env(backend: str, package: str) -> dict[str, str]:
    """The settings of a pass, for the package under test ("eventsourcing"/"esox")."""
    if backend == "popo":
        return {}
    env = {"PERSISTENCE_MODULE": f"{package}.{backend}"}
    if backend == "sqlite":
        env["SQLITE_DBNAME"] = ":memory:"  # one in-memory database per application
    else:
        env.update(PG_SETTINGS)
    return env


def prefix_of(backend: str) -> str:
    """Node ids of the default (POPO) pass are bare; others carry "[backend] "."""
    return "" if backend == "popo" else f"[{backend}] "


def run_pass(
    backend: str, side: str, paths: list[str], timeout: float
) -> tuple[dict[str, Any], dict[str, str], float]:
    package = "esox" if side == "esox" else "eventsourcing"
    extra_env = pass_env(backend, package)
    if extra_env:
        extra_env = {
            **extra_env,
            "ESOX_CONFORMANCE_PASS_ENV": json.dumps(extra_env),
        }
    if backend == "postgres":
        extra_env["ESOX_CONFORMANCE_PG_CLEAN"] = json.dumps(
            {
                "dbname": PG_SETTINGS["POSTGRES_DBNAME"],
                "host": PG_SETTINGS["POSTGRES_HOST"],
                "port": PG_SETTINGS["POSTGRES_PORT"],
                "user": PG_SETTINGS["POSTGRES_USER"],
                "password": PG_SETTINGS["POSTGRES_PASSWORD"],
            }
        )
    log(f"{side} [{backend}]: running ...")
    ignore = ESOX_IGNORE if side == "esox" else ()
    tests, errors, seconds = run_side(
        f"{side}-{backend}", BUILD / side, paths, timeout, ignore, extra_env=extra_env
    )
    failed = sorted(n for n, r in tests.items() if r["outcome"] in RERUN_OUTCOMES)
    if 0 < len(failed) <= RERUN_AT_MOST:
        log(f"{side} [{backend}]: running the {len(failed)} failed tests again ...")
        again, _, more = run_side(
            f"{side}-{backend}-rerun",
            BUILD / side,
            failed,
            timeout,
            ignore,
            extra_env=extra_env,
        )
        seconds += more
        for nodeid in failed:
            if again.get(nodeid, {}).get("outcome") == "passed":
                first = tests[nodeid].get("message", "")
                tests[nodeid] = {**again[nodeid], "flaky": True, "message": first}
    prefix = prefix_of(backend)
    return (
        {prefix + n: r for n, r in tests.items()},
        {prefix + n: m for n, m in errors.items()},
        seconds,
    )


def control_cache_path() -> Path:
    return HERE / f"control-{importlib.metadata.version('eventsourcing')}.json"


def write_control_cache(key: dict[str, str], passes: dict[str, Any]) -> None:
    """Outcomes and first error lines only (no durations): a stable, reviewable file."""
    slim = {
        backend: {
            "tests": {
                n: {k: v for k, v in r.items() if k != "duration"}
                for n, r in data["tests"].items()
            },
            "collect_errors": data["collect_errors"],
        }
        for backend, data in passes.items()
    }
    text = json.dumps({"key": key, "passes": slim}, indent=0, sort_keys=True)
    control_cache_path().write_text(text + "\n")


def load_control_cache(key: dict[str, str]) -> dict[str, Any] | None:
    path = control_cache_path()
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("key") != key:
        log(
            f"{path.name} is stale (key {data.get('key')} != {key}): "
            "running the control"
        )
        return None
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(os.environ.get("ESOX_CONFORMANCE_CORPUS", DEFAULT_CORPUS)),
        help="eventsourcing's tests/examples/docs (env ESOX_CONFORMANCE_CORPUS)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per test")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also fail when pending or known entries now pass",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="rewrite pending.txt and the control cache from this run",
    )
    parser.add_argument(
        "--refresh-control",
        action="store_true",
        help="run the control even if its cached results are current",
    )
    parser.add_argument("--no-postgres-setup", action="store_true")
    parser.add_argument(
        "--backends",
        type=lambda text: [b for b in text.split(",") if b],
        default=list(PASSES),
        help="default persistence modules to run the tree with "
        "(comma-separated; default popo,sqlite,postgres)",
    )
    parser.add_argument(
        "--esox-package",
        type=Path,
        help="the esox package folder to test (built, with its _core extension); "
        "default: the esox this venv imports",
    )
    parser.add_argument(
        "paths", nargs="*", help="run only these paths of the tree (no gate, no update)"
    )
    args = parser.parse_args(argv)
    corpus = args.corpus.resolve()
    if not (corpus / "tests").is_dir():
        parser.error(
            f"no tests/ folder in corpus {corpus}: pass --corpus or set "
            "ESOX_CONFORMANCE_CORPUS to eventsourcing's tests/examples/docs"
        )
    partial = bool(args.paths)
    paths = args.paths or list(RUN_PATHS)
    timings: dict[str, float] = {}

    started = time.monotonic()
    if not args.no_postgres_setup:
        from tests.conformance.pg import ensure_databases

        created = ensure_databases()
        if created:
            log("PostgreSQL: created " + ", ".join(created))
    build_tree(corpus, BUILD / "control", esox=False)
    build_tree(corpus, BUILD / "esox", esox=True, package_dir=args.esox_package)
    timings["setup"] = time.monotonic() - started

    key = {
        "corpus": corpus_hash(corpus),
        "eventsourcing": importlib.metadata.version("eventsourcing"),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "runner": runner_hash(args.timeout),
    }
    cached = None if (partial or args.refresh_control) else load_control_cache(key)
    cached_passes = cached.get("passes", {}) if cached is not None else {}
    control: dict[str, Any] = {}
    control_errors: dict[str, str] = {}
    esox: dict[str, Any] = {}
    esox_errors: dict[str, str] = {}
    ran_control: dict[str, dict[str, Any]] = {}
    for backend in args.backends:
        if backend in cached_passes:
            c_tests = cached_passes[backend]["tests"]
            c_errors = cached_passes[backend]["collect_errors"]
            log(f"control [{backend}]: {len(c_tests)} results from the cache")
        else:
            c_tests, c_errors, timings[f"control {backend}"] = run_pass(
                backend, "control", paths, args.timeout
            )
            ran_control[backend] = {"tests": c_tests, "collect_errors": c_errors}
        control.update(c_tests)
        control_errors.update(c_errors)
        e_tests, e_errors, timings[f"esox {backend}"] = run_pass(
            backend, "esox", paths, args.timeout
        )
        esox.update(e_tests)
        esox_errors.update(e_errors)
    for nodeid, message in list(control_errors.items()):
        bare = cmp.unprefixed(nodeid)
        note = next((n for p, n in DEFERRED if cmp.matches(bare, p)), None)
        if note is not None:  # a deferred module that does not even import on 9.5.6
            del control_errors[nodeid]
            control[nodeid] = {"outcome": "deferred", "message": f"{note} ({message})"}
    if partial:
        control = {
            n: r
            for n, r in control.items()
            if any(
                cmp.unprefixed(cmp.module_of(n)).startswith(p.rstrip("/"))
                for p in paths
            )
        }

    comparison = cmp.compare(control, esox, esox_errors)
    known = cmp.load_known_differences(KNOWN_DIFFERENCES)
    pending = cmp.load_pending(PENDING)
    in_scope = pending if not partial else [n for n in pending if n in control]
    result = cmp.gate(comparison, known, in_scope)
    backends = {m: backends_of(corpus, cmp.unprefixed(m)) for m in comparison.modules}

    refs = inventory.scan(corpus)
    missing = inventory.missing_in_esox(refs, cwd=BUILD / "esox")
    drift = inventory.helper_drift(refs, BUILD / "control", BUILD / "esox")
    flaky = sorted(
        f"{side}: {n}"
        for side, results in (("control", control), ("esox", esox))
        for n, r in results.items()
        if r.get("flaky")
    )
    print_report(
        key["eventsourcing"],
        comparison,
        result,
        backends=backends,
        control_errors=control_errors,
        missing=missing,
        drift=drift,
        flaky=flaky,
    )
    timings["total"] = time.monotonic() - started
    print("\nTimes (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))

    BUILD.mkdir(parents=True, exist_ok=True)
    report = {
        "key": key,
        "partial": partial,
        "timings": timings,
        "totals": dict(comparison.totals),
        "modules": {m: dict(c) for m, c in comparison.modules.items()},
        "backends": backends,
        "failure_causes": cmp.failure_causes(comparison),
        "gate": {
            "unexplained": result.unexplained,
            "pending_failing": len(result.pending_failing),
            "known_failing": result.known_failing,
            "pending_now_passing": result.pending_now_passing,
            "known_now_passing": result.known_now_passing,
            "pending_unknown": result.pending_unknown,
        },
        "esox_lacks": [
            {"module": m, "name": n, "error": e, "files": c} for m, n, e, c in missing
        ],
        "helpers": dict(drift),
        "flaky": flaky,
        "control_collect_errors": control_errors,
        "esox_collect_errors": esox_errors,
        "tests": comparison.tests,
    }
    (BUILD / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"Report: {BUILD / 'report.json'}")

    if args.update and not partial:
        # Entries of passes not run this time are kept as they are.
        kept = [n for n in pending if cmp.pass_of(n) not in args.backends]
        new_pending = set(kept) | set(cmp.pending_from(comparison, known))
        PENDING.write_text(
            "# Control-passing tests esox does not pass yet (the ratchet).\n"
            "# Generated by `make conformance-update`: it may only shrink.\n"
            + "".join(f"{n}\n" for n in sorted(new_pending))
        )
        if ran_control:
            write_control_cache(key, {**cached_passes, **ran_control})
        print(f"Updated {PENDING.name} and {control_cache_path().name}")
        return 0
    if partial:
        return 0
    if not result.ok(args.strict):
        print(
            f"\nFAILED: {len(result.unexplained)} control-passing tests fail on esox "
            "and are neither known differences nor pending",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
