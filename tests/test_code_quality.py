"""The lab's own Python is checked on every `./lab test`: ruff over the code and tests, mypy over the package.

Settings live in pyproject.toml (`[tool.ruff]`, `[tool.mypy]`), so a contributor's editor, this test and CI
agree; the tools are the versions poetry.lock pins in the lab's environment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, check=False, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    done = _run(str(BIN / "ruff"), "check", "--no-cache", "--output-format", "concise", ".")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_mypy_finds_nothing_in_the_package() -> None:
    done = _run(str(BIN / "mypy"), "--no-error-summary")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
