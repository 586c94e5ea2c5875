"""The esox command: the demos run end to end in a real process."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_esox(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "esox", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bank_demo_runs_on_a_sqlite_file(tmp_path: Path):
    db = tmp_path / "demo.sqlite"
    out = run_esox("demo", "--db", str(db), "--accounts", "10", "--transfers", "200")
    assert "Opened 10 accounts" in out
    assert "200 transfers" in out
    assert "Total of all balances: 10000.00" in out
    assert db.exists() and db.stat().st_size > 0


def test_dogschool_demo_prints_the_notification_log():
    out = run_esox("demo", "--example", "dogschool")
    assert "Reconstructed from its events: {'name': 'Fido'" in out
    assert "#3 v3 TrickAdded" in out


def esox(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esox", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_esox_version_prints_the_package_version():
    from esox import __version__

    result = esox("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"esox {__version__}"


def test_every_option_has_help_and_shows_its_default(
    capsys: pytest.CaptureFixture[str],
):
    from esox.cli import parser

    main_parser = parser()
    subparsers = next(
        a for a in main_parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    for name, command in subparsers.choices.items():
        for action in command._actions:
            assert action.help, (name, action.dest)
        text = command.format_help()
        for action in command._actions:
            default = action.default
            if action.option_strings and default not in (
                None,
                False,
                [],
                "==SUPPRESS==",
            ):
                assert f"(default:{default})" in "".join(text.split()), (
                    name,
                    action.dest,
                )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("demo", "--accounts", "0"), "--accounts: must be at least 2, got 0"),
        (("demo", "--accounts", "-3"), "--accounts: must be at least 2, got -3"),
        (("demo", "--transfers", "-1"), "--transfers: must be at least 0, got -1"),
        (("demo", "--accounts", "many"), "--accounts: expected an integer"),
        (
            ("demo", "--db", "/no/such/dir/bank.db"),
            "directory /no/such/dir does not exist",
        ),
        (
            ("serve", "esox.examples.dogschool:DogSchool", "--port", "99999"),
            "--port: must be from 1 to 65535, got 99999",
        ),
        (
            ("serve", "esox.examples.dogschool:DogSchool", "--max-concurrent", "0"),
            "--max-concurrent: must be at least 1, got 0",
        ),
        (
            ("serve", "esox.examples.dogschool:DogSchool", "--write-timeout", "-1"),
            "--write-timeout: must be a positive number of seconds",
        ),
        (("bench", "--scale", "-5"), "--scale: must be at least 100, got -5"),
        (("bench", "--only", "mappers"), "--only 'mappers' names no workload family"),
        (("bench", "--persistence", "oracle"), "--persistence 'oracle'"),
        (("run", "x:y", "--app", "A", "--poll-interval", "0"), "--poll-interval"),
        (
            ("run", "x:y", "--app", "A", "--partitions", "0"),
            "--partitions: must be from 1 to 4096, got 0",
        ),
        (("run", "x:y", "--app", "A", "--lease-ttl", "-1"), "--lease-ttl"),
        (("nope",), "invalid choice: 'nope'"),
    ],
)
def test_bad_arguments_are_one_line_on_stderr_and_exit_2(
    args: tuple[str, ...], message: str
):
    result = esox(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ESOX_HTTP_TOKEN": "", "ESOX_HTTP_ALLOW_ANONYMOUS": "maybe"},
            "ESOX_HTTP_ALLOW_ANONYMOUS='maybe' is not valid: expected a truth value",
        ),
        (
            {"ESOX_HTTP_TOKEN": "secret", "ESOX_HTTP_ALLOW_ANONYMOUS": "maybe"},
            "ESOX_HTTP_ALLOW_ANONYMOUS='maybe' is not valid: expected a truth value",
        ),
        (
            {"ESOX_HTTP_TOKEN": "secret", "ESOX_HTTP_RATE_LIMIT": "fast"},
            "ESOX_HTTP_RATE_LIMIT='fast' is not valid",
        ),
    ],
)
def test_serve_refuses_a_bad_environment_setting_in_one_line(
    env: dict[str, str], message: str
):
    result = esox("serve", "esox.examples.dogschool:DogSchool", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(f"esox serve: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_bench_only_lists_the_valid_families():
    from esox.bench.workloads import FAMILIES

    result = esox("bench", "--only", "nope")
    assert result.returncode == 2
    for family in (*FAMILIES, "command latency"):
        assert repr(family) in result.stderr


def test_serve_with_an_application_that_fails_to_open_is_one_line(tmp_path: Path):
    env = {
        "PERSISTENCE_MODULE": "esox.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "missing" / "dogs.db"),
    }
    result = esox("serve", "esox.examples.dogschool:DogSchool", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("esox serve: esox.examples.dogschool:DogSchool")
    assert "Traceback" not in result.stderr


# Missing extras: simulated by blocking their modules in a fresh interpreter.


def python_without(modules: list[str], code: str) -> subprocess.CompletedProcess[str]:
    blocked = "".join(f"sys.modules[{m!r}] = None; " for m in modules)
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {blocked}\n{code}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_postgres_without_psycopg_says_which_extra_to_install():
    result = python_without(
        ["psycopg", "psycopg_pool"],
        "from esox.examples.dogschool import DogSchool\n"
        "from esox.persistence import InfrastructureFactoryError\n"
        "try:\n"
        "    DogSchool(env={'PERSISTENCE_MODULE': 'esox.postgres'})\n"
        "except InfrastructureFactoryError as e:\n"
        "    print(e)\n",
    )
    assert result.returncode == 0, result.stderr
    assert "PERSISTENCE_MODULE 'esox.postgres' needs the 'postgres' extra" in (
        result.stdout
    )
    assert "pip install 'esox[postgres]'" in result.stdout
    assert "Use 'esox.memory'" not in result.stdout


def test_esox_serve_without_the_http_extra_says_which_extra_to_install():
    result = python_without(
        ["uvicorn"],
        "from esox.cli import main\n"
        "sys.exit(main(['serve', 'esox.examples.dogschool:DogSchool']))\n",
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "esox serve: needs the 'http' extra: pip install 'esox[http]'"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_esox_run_never_prints_the_password_of_an_upstream_url():
    result = esox(
        "run",
        "esox.examples.bankaccounts_system:system",
        *("--app", "Ledger", "--upstream", "Bank=http://reader:hunter2@host:8000"),
    )
    assert result.returncode == 2
    assert "--upstream 'Bank=http://reader:***@host:8000'" in result.stderr
    assert "hunter2" not in result.stderr


def test_demo_on_a_file_that_is_not_a_database_is_one_line(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("not a database, just notes\n" * 100)
    for db in (tmp_path, tmp_path / "notes.txt"):
        result = esox("demo", "--db", str(db), "--accounts", "2", "--transfers", "1")
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("esox demo: ")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
