"""The host's pinned Poetry: the one `./lab` installs in the lab folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from basecamp import config
from basecamp.errors import CommandError, LabError

#: Where `./lab` installs the pinned Poetry (with the mirror plugin) in its own venv.
TOOL_VENV = config.LAB_HOME / "tools" / "poetry"


@dataclass(frozen=True)
class PoetryInfo:
    """Which Poetry the host uses and whether it is the pinned one."""

    path: Path
    version: str
    pinned: str

    @property
    def is_pinned(self) -> bool:
        return self.version == self.pinned


def find_poetry() -> Path:
    """The lab's Poetry ($ANNAPURNA_POETRY, then the lab's tool venv, then PATH)."""
    candidates = [os.environ.get("ANNAPURNA_POETRY"), str(TOOL_VENV / "bin" / "poetry"), shutil.which("poetry")]
    for cand in candidates:
        if cand and Path(cand).exists():
            return Path(cand)
    raise LabError("Poetry not found: run `./lab prepare`, which installs the pinned Poetry in .lab/tools/poetry")


def poetry_info() -> PoetryInfo:
    """Run `poetry --version` on the lab's Poetry."""
    path = find_poetry()
    cmd = [str(path), "--version"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise CommandError(cmd, proc.returncode, proc.stdout + proc.stderr)
    # "Poetry (version 2.5.1)"
    version = proc.stdout.strip().rsplit(" ", 1)[-1].rstrip(")")
    return PoetryInfo(path=path, version=version, pinned=config.poetry_version())


def check_lock(project: Path | None = None) -> str:
    """`poetry check --lock`: is poetry.lock consistent with pyproject.toml? Returns its output."""
    cmd = [str(find_poetry()), "check", "--lock", "--directory", str(project or config.REPO_ROOT)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise CommandError(cmd, proc.returncode, proc.stdout + proc.stderr, "run `poetry lock` with the pinned Poetry")
    return proc.stdout.strip()
