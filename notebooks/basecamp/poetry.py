"""The host's pinned Poetry: the one `./lab` installs in the lab folder."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from basecamp import config, process
from basecamp.errors import CommandError, LabError
from basecamp.index import poetry_env

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
    proc = process.run(cmd, timeout=60)
    # "Poetry (version 2.5.1)"
    version = proc.stdout.strip().rsplit(" ", 1)[-1].rstrip(")")
    return PoetryInfo(path=path, version=version, pinned=config.poetry_version())


def check_lock(project: Path | None = None) -> str:
    """`poetry check --lock`: is poetry.lock consistent with pyproject.toml? Returns its output."""
    cmd = [str(find_poetry()), "check", "--lock", "--directory", str(project or config.REPO_ROOT)]
    proc = process.run(cmd, timeout=120, hint="run `poetry lock` with the pinned Poetry")
    return proc.stdout.strip()


@dataclass(frozen=True)
class GroupSelection:
    """What `poetry show <flags>` selects from a project's lock: the packages an install with those
    group flags would put in the venv, or Poetry's refusal."""

    flags: tuple[str, ...]
    #: Distribution names, as the lock spells them, in Poetry's order (empty when Poetry refused).
    packages: tuple[str, ...]
    #: Poetry's message when it refused the flags ("" when it did not).
    error: str = ""

    @property
    def command(self) -> str:
        return " ".join(["poetry", "show", *self.flags])

    def summary(self) -> str:
        if self.error:
            return f"{self.command}: refused: {self.error}"
        return f"{self.command}: {len(self.packages)} packages"


def select_groups(project: Path, *flags: str) -> GroupSelection:
    """`poetry show <flags>` on `project` (e.g. "--only", "main"): which locked packages those flags select.

    `poetry install` takes the same group flags (`--with`, `--without`, `--only`), so this shows
    what an install would select without installing anything. It reads pyproject.toml and
    poetry.lock only (POETRY_VIRTUALENVS_CREATE=false: no environment is made anywhere).
    """

    cmd = [str(find_poetry()), "show", "--no-ansi", "--directory", str(project), *flags]
    env = {**poetry_env(), "POETRY_VIRTUALENVS_CREATE": "false", "POETRY_NO_INTERACTION": "1"}
    proc = process.run(cmd, timeout=120, env=env, check=False)
    if not proc.ok:
        message = " ".join((proc.stderr or proc.stdout).split())
        if not message:
            raise CommandError(cmd, proc.returncode, proc.stdout + proc.stderr)
        return GroupSelection(flags=tuple(flags), packages=(), error=message)
    names = tuple(line.split()[0] for line in proc.stdout.splitlines() if line.strip())
    return GroupSelection(flags=tuple(flags), packages=names)
