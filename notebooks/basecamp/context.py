"""Build contexts: what `docker build <folder>` sends, what a .dockerignore keeps out, and what it costs.

The classic builder tars the whole folder (minus .dockerignore) and sends it before the first
step. BuildKit sends only the paths the Dockerfile references (`COPY pyproject.toml ./` sends one
file; `COPY . .` sends everything), minus .dockerignore, and reports it as a vertex line
`#N transferring context: 12.3MB 0.4s done`. `context_size()` walks a folder the way the classic
builder would (the upper bound of what `COPY . .` sends); `transferred_bytes()` reads what
BuildKit really transferred in a build.

.dockerignore patterns are matched by the Docker SDK's `PatternMatcher` (a port of Docker's own
`fileutils`: names, `*`/`?` globs, `**`, `!` exceptions, a matched folder excludes what is under it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from docker.utils.build import PatternMatcher

from basecamp import config, disk
from basecamp.build import BuildCounts, build
from basecamp.errors import InputError
from basecamp.lesson import show_code
from basecamp.results import CONTEXT, Record, record
from basecamp.scratch import scratch_copy
from basecamp.steps import STEP_LABEL
from basecamp.units import fmt_bytes, fmt_seconds

if TYPE_CHECKING:
    from basecamp.build import BuildResult
    from basecamp.scratch import Scratch

DOCKERIGNORE = ".dockerignore"
_TRANSFER = re.compile(r"transferring context:\s*([0-9.]+)\s*([kKMG]?i?B)\b")
_UNITS = {"B": 1, "kB": 1000, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2, "GB": 1000**3, "GiB": 1024**3}


@dataclass(frozen=True)
class ContextSize:
    """What a build context holds: how many files and bytes, and the biggest top-level entries."""

    root: Path
    files: int
    bytes: int
    #: Top-level entries (files or folders) with their bytes, biggest first.
    top: list[tuple[str, int]]
    ignore: tuple[str, ...] = ()


def read_dockerignore(path: Path) -> list[str]:
    """The patterns of a .dockerignore file: comments and blank lines dropped, paths cleaned."""
    if not path.is_file():
        raise InputError(f"read_dockerignore: {path} does not exist")
    patterns = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        body = os.path.normpath(line[1:].strip() if neg else line).lstrip("/")
        patterns.append(("!" if neg else "") + body)
    return patterns


def matcher(patterns: list[str]) -> PatternMatcher:
    """Docker's own .dockerignore matcher (the Docker SDK's port of `fileutils`), for `patterns`."""
    return PatternMatcher(patterns)


def is_ignored(rel: str, patterns: list[str]) -> bool:
    """Whether .dockerignore `patterns` keep path `rel` (relative, `/`-separated) out; the last match wins."""
    return bool(matcher(patterns).matches(rel))


def context_size(root: Path, ignore: list[str] | None = None, top: int = 8) -> ContextSize:
    """Walk `root` like the classic builder does: every file, minus those `ignore` patterns exclude.

    Symlinks are counted as links (not followed), as `docker build` sends them.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"context_size: {root} is not a folder")
    patterns = list(ignore or [])
    ignored = matcher(patterns).matches
    per_top: dict[str, int] = {}
    files = total = 0
    for folder, dirs, names in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        if patterns and not any(p.startswith("!") for p in patterns):
            dirs[:] = [d for d in dirs if not ignored(rel_folder + d)]
        for name in names:
            rel = rel_folder + name
            if patterns and ignored(rel):
                continue
            size = os.lstat(os.path.join(folder, name)).st_size
            files += 1
            total += size
            key = rel.split("/", 1)[0]
            per_top[key] = per_top.get(key, 0) + size
    biggest = sorted(per_top.items(), key=lambda kv: -kv[1])[:top]
    return ContextSize(root, files, total, biggest, tuple(patterns))


def transferred_bytes(build: BuildResult) -> int | None:
    """The bytes BuildKit reported for the build context (the largest `transferring context:` line).

    None when the log has no such line (the classic builder, or a Dockerfile copying nothing).
    """
    values = [float(m[1]) * _UNITS.get(m[2], 1) for m in _TRANSFER.finditer(build.log)]
    return int(max(values)) if values else None


#: What `clutter()` adds to a scratch copy: what a real checkout holds beside the app.
CLUTTER = {
    "notebooks/explore.ipynb": json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
    "tests/test_app.py": "def test_nothing() -> None:\n    assert True\n",
    "docs/notes.md": "# Notes\n",
}


def clutter(app: Scratch) -> list[str]:
    """Add a notebook, a test and a doc to a scratch copy (a checkout is more than the app); return them."""
    for rel, text in CLUTTER.items():
        path = app.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    app.edits.append("added " + ", ".join(CLUTTER))
    return list(CLUTTER)


def edit_notebook(app: Scratch, note: str) -> str:
    """Change the scratch copy's notebook (a new markdown cell), as saving a notebook does; return its path."""
    rel = "notebooks/explore.ipynb"
    path = app.path / rel
    if not path.is_file():
        raise InputError(f"edit_notebook: {path} does not exist; call clutter(app) first")
    nb = json.loads(path.read_text())
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": [note]})
    path.write_text(json.dumps(nb))
    app.edits.append(f"{rel}: new cell {note!r}")
    return rel


def use_dockerignore(app: Scratch, on: bool, source: Path | None = None) -> Path:
    """Put the checkout's .dockerignore into the scratch copy (on) or remove it (off); return its path."""
    dest = app.path / DOCKERIGNORE
    if on:
        src = (source or config.REPO_ROOT) / DOCKERIGNORE
        if not src.is_file():
            raise InputError(f"use_dockerignore: {src} does not exist")
        shutil.copy2(src, dest)
    elif dest.exists():
        dest.unlink()
    return dest


DEMO_DOCKERFILE = config.DOCKERFILES_DIR / "extras" / "07-copy-everything.Dockerfile"


@dataclass
class Rebuild(BuildCounts):
    """The rebuild after a notebook edit: did the install come from the cache, and what was sent."""

    dockerignore: bool
    build: BuildResult
    #: Bytes BuildKit reported transferring for the context (None when it printed none).
    transferred: int | None

    @property
    def install_cached(self) -> bool:
        step = self.build.step_matching("poetry install")
        return step is not None and step.status == "cached"


@dataclass
class ContextDemo:
    """The same notebook edit, rebuilt without and with a .dockerignore."""

    without: Rebuild
    with_ignore: Rebuild

    def rows(self) -> list[str]:
        out = []
        for r in (self.without, self.with_ignore):
            label = "with .dockerignore   " if r.dockerignore else "without .dockerignore"
            install = "cached" if r.install_cached else "RAN AGAIN"
            out.append(f"{label}: rebuild {fmt_seconds(r.build.wall_s)}, {r.cached} cached, {r.ran} ran, "
                       f"install {install}, context sent {fmt_bytes(r.transferred)}")
        return out


def context_demo(display: str | None = "none") -> ContextDemo:
    """Build the `COPY . .` demo on a cluttered scratch copy, edit its notebook, rebuild: without, then with .dockerignore."""
    app = scratch_copy("07-context-demo")
    clutter(app)
    tag = f"{config.IMAGE_REPO_PREFIX}/07-copy-everything:demo"
    disk.ensure_disk_space()  # build() leaves the free-disk check to its callers
    outcomes = []
    for on in (False, True):
        use_dockerignore(app, on)
        build(DEMO_DOCKERFILE, app.path, tag, labels={STEP_LABEL: "07-copy-everything"}, display=display)
        edit_notebook(app, f"edited {uuid.uuid4().hex[:12]}")
        again = build(DEMO_DOCKERFILE, app.path, tag, labels={STEP_LABEL: "07-copy-everything"}, display=display)
        outcomes.append(Rebuild(on, again, transferred_bytes(again)))
    return ContextDemo(outcomes[0], outcomes[1])


def show_dockerfile_path(path: Path) -> None:
    """Display any Dockerfile by path (highlighted in JupyterLab, plain in a terminal)."""
    text = Path(path).read_text()

    show_code(text, "docker")


def record_context(sizes: dict[str, ContextSize], demo: ContextDemo) -> None:
    """Write notebook 07's numbers to the results file (step "07-build-context"), for the summary."""
    for name, s in sizes.items():
        record(Record(step="07-build-context", scenario="context: " + name, kind=CONTEXT, size_bytes=s.bytes))
    for r in (demo.without, demo.with_ignore):
        record(Record(step="07-build-context", kind=CONTEXT,
                      scenario="notebook-edit " + ("with .dockerignore" if r.dockerignore else "without .dockerignore"),
                      wall_s=round(r.build.wall_s, 3), size_bytes=r.transferred, cached_steps=r.cached,
                      ran_steps=r.ran, builder=r.build.builder, image_id=r.build.image_id))
