"""The wheel that ``make wheel`` builds installs and runs without a Rust toolchain.

Slow (it may build the wheel: minutes from a clean target/, seconds after
``make build``); deselect with ``-m 'not slow'``. A wheel in dist/ newer than
every file it is built from is reused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
PY_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"
# The process environment a user's shell would pass on, minus everything
# that could point at this checkout, its venv or a Rust toolchain.
PASSED_ON = ("HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")
PASSED_ON_PREFIXES = ("PIP_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")

# The recorder contract as the tests run it (tests/persistence/test_recorders.py
# and the backends of tests/persistence_envs.py), copied beside the installed
# wheel in the same package layout.
CONTRACT = (
    "__init__.py",
    "persistence_envs.py",
    "persistence/__init__.py",
    "persistence/test_recorders.py",
)


def wheel_sources() -> Iterator[Path]:
    """The files a wheel is built from: a change to any makes it stale."""
    yield from (ROOT / name for name in ("Cargo.toml", "Cargo.lock", "pyproject.toml"))
    yield ROOT / "README.md"
    yield from (p for p in (ROOT / "rust").rglob("*") if p.is_file())
    for path in (ROOT / "python").rglob("*"):
        # The develop build's .so is rebuilt by `make build`, not from here.
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".so":
            yield path


def fresh_wheel() -> Path | None:
    """The newest wheel in dist/ for this Python, if newer than its sources."""
    wheels = sorted(
        DIST.glob(f"esox-*-{PY_TAG}-{PY_TAG}-*.whl"), key=lambda p: p.stat().st_mtime
    )
    if not wheels:
        return None
    newest_source = max(p.stat().st_mtime for p in wheel_sources() if p.exists())
    return wheels[-1] if wheels[-1].stat().st_mtime > newest_source else None


@pytest.fixture(scope="module")
def wheel() -> Path:
    built = fresh_wheel()
    if built is None:
        if shutil.which("make") is None:
            pytest.fail("no fresh wheel in dist/ and no `make` to build one")
        subprocess.run(["make", "wheel"], cwd=ROOT, check=True)
        built = fresh_wheel()
    assert built is not None, f"`make wheel` left no {PY_TAG} wheel in {DIST}"
    return built


def user_env(venv: Path, **extra: str) -> dict[str, str]:
    """A user's environment with only ``venv`` activated, and no Rust on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k in PASSED_ON or k.upper().startswith(PASSED_ON_PREFIXES)
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def run(venv: Path, *args: str, cwd: Path, **extra: str) -> str:
    """Run a command of ``venv`` in a user's environment; its output, or fail."""
    return run_command([str(venv / "bin" / args[0]), *args[1:]], venv, cwd, extra)


def pip(venv: Path, *args: str, cwd: Path) -> str:
    """Run pip on ``venv`` (pip itself is not installed there: nothing but esox is)."""
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    return run_command([*command, *args], venv, cwd, {})


def run_command(
    command: list[str], venv: Path, cwd: Path, extra: dict[str, str]
) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        env=user_env(venv, **extra),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited with {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    return done.stdout


@dataclass
class Installed:
    venv: Path
    work: Path
    packages: set[str]  # right after installing the wheel alone
    imported_from: str


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv with the wheel installed, offline, and nothing else."""
    base = tmp_path_factory.mktemp("wheel")
    venv, work = base / "venv", base / "work"
    work.mkdir()
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    for tool in ("cargo", "rustc", "maturin"):
        found = shutil.which(tool, path=user_env(venv)["PATH"])
        assert found is None, f"{tool} is on the stripped PATH: {found}"
    # --no-index: any declared dependency would make this fail.
    pip(venv, "install", "-q", "--no-index", str(wheel), cwd=work)
    listed = pip(venv, "list", "--format=json", cwd=work)
    packages = {p["name"].lower() for p in json.loads(listed)}
    imported_from = run(
        venv,
        "python",
        "-c",
        "import esox, esox.memory, esox.sqlite, esox._core; print(esox._core.__file__)",
        cwd=work,
    ).strip()
    return Installed(venv, work, packages, imported_from)


def test_wheel_is_tagged_manylinux_and_ships_the_stub(wheel: Path):
    # manylinux_2_NN_<arch>, maybe after its legacy alias (manylinux2014_<arch>.)
    platform = r"(manylinux\w+\.)?manylinux_2_\d+_\w+"
    assert re.fullmatch(
        rf"esox-[\w.]+-{PY_TAG}-{PY_TAG}-{platform}\.whl", wheel.name
    ), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert len([n for n in names if n.startswith("esox/_core.")]) == 2  # .so, .pyi
    assert "esox/_core.pyi" in names and "esox/py.typed" in names
    assert not [n for n in names if "__pycache__" in n]


def test_core_requires_nothing_and_extras_require_their_stacks(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        (metadata,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        lines = z.read(metadata).decode().splitlines()
    requires = [
        line.split(":", 1)[1].strip()
        for line in lines
        if line.startswith("Requires-Dist:")
    ]
    assert [r for r in requires if "extra ==" not in r] == []
    extras: dict[str, set[str]] = {}
    for requirement in requires:
        spec, marker = requirement.split(";")
        extra = re.search(r"extra == '(\w+)'", marker)
        assert extra, requirement
        name = re.match(r"[\w-]+", spec.strip())
        assert name
        extras.setdefault(extra[1], set()).add(name[0].lower().replace("_", "-"))
    assert extras["postgres"] == {"psycopg", "psycopg-pool"}
    assert "psycopg[c]" in " ".join(requires)
    assert extras["http"] == {"starlette", "uvicorn", "httpx", "orjson"}
    assert extras["eventsourcing"] == {"eventsourcing"}
    assert extras["bench"] >= {
        "pytest-benchmark",
        "eventsourcing",
        "orjson",
        "matplotlib",
    }


def test_core_install_pulls_in_nothing(installed: Installed):
    assert installed.packages == {"esox"}
    site_packages = installed.venv / "lib"
    assert Path(installed.imported_from).is_relative_to(site_packages), (
        installed.imported_from
    )


def readme_code() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", readme, re.DOTALL | re.MULTILINE)
    assert any("class DogSchool" in block for block in blocks)
    return "\n".join(blocks)


@pytest.mark.parametrize("persistence", ["memory", "sqlite"])
def test_readme_dog_school_runs_on_the_installed_wheel(
    installed: Installed, persistence: str
):
    script = installed.work / "readme.py"
    script.write_text(readme_code())
    settings = {"PERSISTENCE_MODULE": f"esox.{persistence}"}
    if persistence == "sqlite":
        settings["SQLITE_DBNAME"] = str(installed.work / "dogschool.db")
    run(installed.venv, "python", str(script), cwd=installed.work, **settings)
    output = run(
        installed.venv, "esox", "demo", "--example", "dogschool", cwd=installed.work
    )
    assert "Fido" in output


def test_recorder_suite_passes_on_the_installed_wheel(installed: Installed):
    # pytest alone besides the wheel, and only as a binary wheel.
    pip(
        installed.venv,
        "install",
        "-q",
        "--only-binary=:all:",
        "pytest",
        cwd=installed.work,
    )
    suite = installed.work / "suite"
    (suite / "tests" / "persistence").mkdir(parents=True)
    (suite / "pytest.ini").write_text("[pytest]\n")
    for name in CONTRACT:
        shutil.copy(ROOT / "tests" / name, suite / "tests" / name)
    output = run(
        installed.venv,
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        # No psycopg beside the wheel: the PostgreSQL cases stay in the main run.
        "-k",
        "not Postgres",
        "tests/persistence/test_recorders.py",
        cwd=suite,
    )
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed[1]) >= 170, output
    assert "failed" not in output and "error" not in output, output
