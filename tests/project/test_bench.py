"""``esox bench``: a tiny run writes its table, results.json and chart; no
timing is asserted."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from esox.bench import Options, run_bench
from esox.bench.run import POSTGRES_ONLY
from esox.bench.workloads import FAMILIES
from esox.bench.workloads.storage import Kind
from esox.cli import main

pytest.importorskip("eventsourcing")
pytest.importorskip("matplotlib")

# Every workload of esox bench, both sides, plus latency: about a minute and a half.
slow = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def small_run(out: Path, **options: Any) -> tuple[dict[str, Any], str, str]:
    """run_bench at 200 events, once each, on memory without latency unless
    ``options`` say otherwise: its results, stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    options = {"persistence": ("memory",), "latency": False} | options
    results = run_bench(
        Options(scale=200, repeats=1, out=out, **options), stdout=stdout, stderr=stderr
    )
    return results, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """Every workload at 200 events, once each, on memory and SQLite."""
    out_dir = tmp_path_factory.mktemp("bench-out")
    _, stdout, stderr = small_run(
        out_dir,
        persistence=("memory", "sqlite"),
        latency=True,
        profile=False,
        goals=True,
    )
    return stdout, stderr, out_dir


@slow
def test_a_tiny_run_writes_results_json_and_a_png_chart(tiny_run):
    _, _, out_dir = tiny_run
    results = json.loads((out_dir / "results.json").read_text())
    assert results["plan"]["scales"] == [200]
    assert results["machine"]["nproc"] >= 1
    assert (out_dir / "chart.png").read_bytes().startswith(PNG_SIGNATURE)


@slow
def test_every_workload_family_is_measured_on_both_sides(tiny_run):
    _, _, out_dir = tiny_run
    results = json.loads((out_dir / "results.json").read_text())
    families = {w["family"] for w in results["workloads"]}
    # "pg writers" and "partitions" run on PostgreSQL only, which this run
    # leaves out.
    assert families == set(FAMILIES) - set(POSTGRES_ONLY)
    for workload in results["workloads"]:
        assert not workload["error"], workload["key"]
        assert workload["sides"]["esox"]["median_ns"] > 0
        # eventsourcing has no SQLite DCB recorder (and no zstd compressor:
        # its side of the mapper's zstd variants is its zlib).
        esox_only = workload["family"] == "dcb" and "SQLite" in workload["variant"]
        if not esox_only:
            assert workload["ratio_eventsourcing"] > 0, workload["key"]
    dcb = {w["variant"] for w in results["workloads"] if w["family"] == "dcb"}
    assert dcb == {
        "course-booking decisions, 1 client, memory",
        "course-booking decisions, 1 client, SQLite NORMAL",
        "course-booking decisions, 4 client processes, SQLite NORMAL",
        "read by tag, memory",
        "read by tag, SQLite NORMAL",
    }
    limits = {w["key"] for w in results["workloads"] if w["ratio_limit"]}
    assert "recorder insert, SQLite FULL, batch 10 @ 200" in limits
    assert "mapper encode, plain @ 200" in limits


@slow
def test_the_table_shows_the_workloads_latency_and_goals(tiny_run):
    table, _, _ = tiny_run
    for family in set(FAMILIES) - set(POSTGRES_ONLY):
        assert f"-- {family}" in table
    assert "Note: pg writers, partitions: PostgreSQL only, not run" in table
    for variant in ("SQLite FULL, batch 100", "SQLite NORMAL, batch 1", "zlib+AES"):
        assert variant in table
    assert "command latency" in table
    assert "p99.9" in table
    assert "Goals (esox against eventsourcing 9.x" in table
    assert "mapper JSON encode and decode >= 10x" in table


@slow
def test_progress_is_one_line_per_workload_when_not_a_terminal(tiny_run):
    _, progress, out_dir = tiny_run
    results = json.loads((out_dir / "results.json").read_text())
    count = len(results["workloads"]) + len(results["latency"])
    lines = [line for line in progress.splitlines() if line.startswith("[")]
    assert len(lines) == count
    assert lines[-1].startswith(f"[{count}/{count}]")


@slow
def test_goals_are_judged_met_missed_or_not_measured(tiny_run):
    _, _, out_dir = tiny_run
    goals = json.loads((out_dir / "results.json").read_text())["goals"]
    assert {g["status"] for g in goals} <= {"met", "missed", "not measured"}
    titles = [g["title"] for g in goals]
    assert any("notification select (PostgreSQL)" in t for t in titles)
    assert any("per-command overhead" in t for t in titles)


def test_without_eventsourcing_only_esox_numbers_are_shown(tmp_path: Path):
    results, stdout, _ = small_run(tmp_path, compare="none", only=("mapper encode",))
    assert results["goals"] == []
    assert {w["family"] for w in results["workloads"]} == {"mapper encode"}
    assert all(w["ratio_eventsourcing"] is None for w in results["workloads"])
    assert "Goal" not in stdout
    assert (tmp_path / "results.json").exists()


def test_bench_rejects_an_unknown_persistence_kind(capsys: pytest.CaptureFixture[str]):
    assert main(["bench", "--persistence", "memory,oracle"]) == 2
    assert "expected a comma-separated list" in capsys.readouterr().err


def esox_bench(
    out: Path, family: str, *, code: tuple[str, ...] = ("-m", "esox")
) -> subprocess.CompletedProcess[str]:
    """``esox bench`` of one family at 200 events on memory, in a subprocess
    (``code`` runs the command line in another way)."""
    args = ["--scale", "200", "--persistence", "memory", "--only", family]
    return subprocess.run(
        [sys.executable, *code, "bench", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_esox_bench_runs_as_a_command(tmp_path: Path):
    result = esox_bench(tmp_path, "mapper decode")
    assert result.returncode == 0, result.stderr
    assert "mapper decode" in result.stdout
    # The project's goals are shown only with --goals.
    assert "Goal" not in result.stdout
    assert "[10/10] mapper decode, zlib+AES, 10 attributes @ 200" in result.stderr
    assert (tmp_path / "results.json").exists()
    assert (tmp_path / "chart.png").exists()


def test_concurrent_insert_checks_notification_ids_are_exactly_1_to_n() -> None:
    from esox.bench.workloads.concurrent import check_complete, stored_batches
    from esox.memory import MemoryApplicationRecorder

    recorder = MemoryApplicationRecorder()
    for batch in stored_batches("esox", 30):
        recorder.insert_events(batch)
    check_complete(recorder, 30)
    with pytest.raises(AssertionError, match="30 notifications of 40 written"):
        check_complete(recorder, 40)


def _sqlite_kind() -> Kind:
    return Kind("SQLite FULL", "sqlite", "FULL")


def _sqlite_database(tmp_path: Path) -> str:
    from esox.bench.workloads.storage import Fresh, attach_recorder

    path = str(tmp_path / "writers.sqlite")
    fresh = Fresh()
    attach_recorder(_sqlite_kind(), "esox", path, fresh)  # makes the tables
    fresh.release()
    return path


def test_a_writer_process_that_dies_fails_the_block_at_once(tmp_path: Path) -> None:
    import time

    from esox.bench.workloads.concurrent import WRITERS, Writers

    writers = Writers("esox", _sqlite_kind())
    try:
        path = _sqlite_database(tmp_path)
        writers.send([("attach", (path, 20))] * WRITERS, "ready")
        writers.procs[0].kill()
        writers.procs[0].join()
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="a writer process exited"):
            writers.send([("go", None)] * WRITERS, "done")
        assert time.monotonic() - started < 30
    finally:
        writers.close()


def test_a_writer_error_is_reported_after_every_reply(tmp_path: Path) -> None:
    from esox.bench.workloads.concurrent import WRITERS, Writers

    writers = Writers("esox", _sqlite_kind())
    try:
        path = _sqlite_database(tmp_path)
        bad = [("attach", (str(tmp_path / "no" / "such.sqlite"), 20))]
        with pytest.raises(RuntimeError, match="a writer process failed"):
            writers.send(bad + [("attach", (path, 20))] * (WRITERS - 1), "ready")
        # Every reply was taken: the next exchange reads its own.
        writers.send([("attach", (path, 20))] * WRITERS, "ready")
        writers.send([("go", None)] * WRITERS, "done")
    finally:
        writers.close()


def _orphan_writers(path: str, pids_file: str) -> None:
    """Start writers, note their pids, and die without stopping them."""
    import os

    from esox.bench.workloads.concurrent import WRITERS, Writers

    writers = Writers("esox", _sqlite_kind())
    writers.send([("attach", (path, 10))] * WRITERS, "ready")
    Path(pids_file).write_text(" ".join(str(p.pid) for p in writers.procs))
    os._exit(0)


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has exited


def test_writer_processes_end_when_their_parent_dies(tmp_path: Path) -> None:
    import multiprocessing
    import time

    path, pids_file = _sqlite_database(tmp_path), tmp_path / "pids"
    parent = multiprocessing.get_context("spawn").Process(
        target=_orphan_writers, args=(path, str(pids_file))
    )
    parent.start()
    parent.join(timeout=120)
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 4
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_running(pid) for pid in pids)


def test_goals_are_shown_only_when_asked(tmp_path: Path):
    results, stdout, _ = small_run(
        tmp_path, only=("mapper encode",), profile=False, goals=True
    )
    assert "Goals (esox against eventsourcing 9.x" in stdout
    assert any(g["title"].startswith("mapper JSON encode") for g in results["goals"])


# As if the extra were not installed: None in sys.modules makes imports fail
# and find_spec find nothing.
HIDE_BENCH_EXTRA = """
import sys
sys.modules["eventsourcing"] = sys.modules["matplotlib"] = None
from esox.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_the_bench_extra_the_run_says_what_to_install(tmp_path: Path):
    result = esox_bench(tmp_path, "mapper encode", code=("-c", HIDE_BENCH_EXTRA))
    assert result.returncode == 0, result.stderr
    assert "eventsourcing is not installed (pip install 'esox[bench]')" in (
        result.stdout
    )
    assert "no chart: matplotlib is not installed (pip install 'esox[bench]')" in (
        result.stdout
    )
    assert not (tmp_path / "chart.png").exists()


def test_postgres_only_families_say_why_they_did_not_run(tmp_path: Path):
    results, stdout, _ = small_run(tmp_path, only=("partitions",), chart=False)
    assert results["workloads"] == []
    assert (
        "Note: partitions: PostgreSQL only, not run "
        "(PostgreSQL is not in --persistence)"
    ) in stdout


@pytest.mark.parametrize("side", ["esox", "eventsourcing"])
def test_dcb_decisions_append_one_event_each_and_reads_find_the_tagged(
    side: str,
) -> None:
    from esox.bench.workloads import dcb

    recorder = dcb.open_store(side, "memory", "")
    api = dcb.api_of(side)
    next_block = dcb.booking(recorder, side)
    next_block()()
    next_block()()
    joined = api.DCBQuery([api.DCBQueryItem(types=["StudentJoined"])])
    assert len(list(recorder.read(joined))) == 2 * dcb.DECISIONS
    query = dcb.fill(recorder, api, 250)
    events = dcb.read_block(recorder, query, 3)()
    assert isinstance(events, list) and len(events) == 3
    with pytest.raises(AssertionError, match="read 3 tagged events, expected 4"):
        dcb.read_block(recorder, query, 4)()


def test_a_dcb_client_process_that_fails_fails_the_round_with_its_error(
    tmp_path: Path,
) -> None:
    from esox.bench.workloads.dcb import Clients

    clients = Clients("esox", "sqlite", str(tmp_path / "no" / "such" / "dcb.db"))
    try:
        with pytest.raises(RuntimeError, match="a DCB client process failed"):
            clients.run_round()
    finally:
        clients.close()
