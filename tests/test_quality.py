"""The static checks run inside the test command so they cannot rot: ruff, mypy --strict,
import-linter's layer contracts, and the public surface of the SDK."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


@pytest.mark.slow
def test_ruff_finds_nothing() -> None:
    result = run(tool("ruff"), "check", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_passes() -> None:
    result = run(sys.executable, "-m", "mypy", "--strict", "src/lastgood")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_import_contracts_hold() -> None:
    result = run(tool("lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout
