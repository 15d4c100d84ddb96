"""Scratch copies of the app: the build context every experiment uses.

Experiments edit code and dependencies; they do it here, never in the learner's checkout.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from basecamp import config
from basecamp.errors import InputError

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".mypy_cache", ".ruff_cache")


@dataclass
class Scratch:
    """One scratch copy of the app, at `path`. `edits` lists what was changed in it, in order."""

    name: str
    path: Path
    source: Path
    edits: list[str] = field(default_factory=list)

    def edit_code(self) -> str:
        """Make a real code change the build cannot have seen before; return the line added.

        The line carries a fresh id, so no earlier build (of any step, in any run) has the
        same content in its layer cache: the rebuild after it shows what a code change costs.
        """
        edit_id = uuid.uuid4().hex[:12]
        line = f'BUILD_EDIT = "{edit_id}"  # added by the lab to simulate a code change\n'
        main = self.path / "annapurna" / "main.py"
        main.write_text(main.read_text() + line)
        self.edits.append(f"annapurna/main.py: {line.strip()}")
        return line.strip()

    def files(self) -> list[str]:
        """Every file in the context, relative to it, sorted: what `COPY . .` sends."""
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file())


def scratch_copy(name: str = "default", source: Path | None = None) -> Scratch:
    """A fresh copy of the app's files (pyproject.toml, poetry.lock, README.md, annapurna/).

    `source` defaults to this checkout; any folder holding those files works. The copy lives
    in the git-ignored lab folder and is replaced each call, so every notebook starts clean.
    """
    if not _NAME.match(name):
        raise InputError(f"scratch name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
    src = (source or config.REPO_ROOT).resolve()
    missing = [f for f in config.APP_FILES if not (src / f).exists()]
    if missing:
        raise InputError(f"{src} is not a Poetry app folder: missing {', '.join(missing)}")
    dest = config.SCRATCH_DIR / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for item in config.APP_FILES:
        if (src / item).is_dir():
            shutil.copytree(src / item, dest / item, ignore=_IGNORED)
        else:
            shutil.copy2(src / item, dest / item)
    return Scratch(name=name, path=dest, source=src)
