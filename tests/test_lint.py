"""The code base passes its linters: ruff with the configured rules, and mypy over the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, cwd=ROOT, check=False)


def test_ruff_passes() -> None:
    pytest.importorskip("ruff", reason="ruff is in the test extra: pip install -e '.[test]'")
    done = run_tool("ruff", "check", "frameworks", "tests", "shared_data", "docs/conf.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_passes(tmp_path) -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    done = run_tool("mypy", "--cache-dir", str(tmp_path / "cache"))  # files and settings: [tool.mypy]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout


def test_the_package_ships_its_type_marker() -> None:
    assert (ROOT / "frameworks" / "py.typed").is_file()
    assert shutil.which("git") is None or "py.typed" in subprocess.run(
        ["git", "ls-files", "frameworks/py.typed"], capture_output=True, text=True, cwd=ROOT, check=False).stdout
