"""The code is ruff-clean and ruff-formatted, and the modules pyproject.toml holds to strict
typing pass mypy: checked by the test command, so `main` cannot drift from it. The tools'
versions are pinned in the test extras (a new release's new rules are adopted by a commit)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    assert exe is not None, f"{tool} is not installed: pip install -e '.[test]'"
    return subprocess.run(
        [str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_ruff_check_finds_nothing() -> None:
    r = run("ruff", "check", "--no-cache", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format_changes_nothing() -> None:
    r = run("ruff", "format", "--no-cache", "--check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.timeout(300)
def test_mypy_passes_with_the_strict_modules_strict() -> None:
    r = run("mypy", "sdnmip")
    assert r.returncode == 0, r.stdout + r.stderr
