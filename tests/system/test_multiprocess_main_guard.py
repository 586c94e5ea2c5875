"""The tutorial's MultiProcessRunner code pasted into a script, with and without
``if __name__ == "__main__":``: without, it fails at start and shows the guard."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SETUP = """\
from pathlib import Path

from esox.examples.bankaccounts_system import system
from esox.system import MultiProcessRunner

env = {"PERSISTENCE_MODULE": "esox.sqlite"}
for name in system.names:
    env[f"{name.upper()}_SQLITE_DBNAME"] = str(Path(__file__).parent / f"{name}.db")
"""

START = """\
with MultiProcessRunner(system, env=env, poll_interval=1.0, start_timeout=60) as runner:
    print("started", sorted(runner.processes))
"""


def run_script(path: Path, source: str) -> subprocess.CompletedProcess[str]:
    path.write_text(source)
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=path.parent,
        env={k: v for k, v in os.environ.items() if k != "PERSISTENCE_MODULE"},
    )


def test_a_script_without_the_main_guard_fails_at_start_showing_the_guard(
    tmp_path: Path,
):
    result = run_script(tmp_path / "unguarded.py", SETUP + START)
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "SystemDefinitionError: The process of Ledger could not start" in (
        result.stderr
    )
    assert 'if __name__ == "__main__":' in result.stderr
    assert "runner.start()" in result.stderr
    assert str(tmp_path / "unguarded.py") in result.stderr
    assert "restart(" not in result.stderr


def test_the_same_script_with_the_main_guard_starts(tmp_path: Path):
    guarded = SETUP + 'if __name__ == "__main__":\n' + textwrap.indent(START, "    ")
    result = run_script(tmp_path / "guarded.py", guarded)
    assert result.returncode == 0, result.stderr
    assert "started ['Ledger', 'Notifications']" in result.stdout
