"""The esox command: the demos run end to end in a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
