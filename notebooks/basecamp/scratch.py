"""Scratch copies of the app: the build context every experiment uses.

Experiments edit code and dependencies; they do it here, never in the learner's checkout.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from basecamp import config
from basecamp.errors import InputError, LabError
from basecamp.index import poetry_env, run_lock
from basecamp.poetry import find_poetry
from basecamp.uvlock import lock as uv_lock

if TYPE_CHECKING:
    from basecamp.project import Project

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".mypy_cache", ".ruff_cache")

#: The dependency a simulated "dependency change" adds: `inflection`, a 10 kB pure-Python wheel
#: (py2.py3-none-any) with no dependencies of its own, last released in 2020 (so the pin never
#: moves), and not in the app's poetry.lock: adding it needs one new download, nothing else.
DEPENDENCY = "inflection (==0.5.1)"
#: Start of the comment line that makes each dependency change new to the layer cache.
DEPENDENCY_MARKER = "# annapurna-lab dependency change "
_DEP_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
#: The tables whose `version = "..."` is the project's version: PEP 621's, else Poetry 1's.
VERSION_TABLES = ("[project]", "[tool.poetry]")
_VERSION_LINE = re.compile(r'^(\s*version\s*=\s*)(["\'])([^"\']*)\2(.*)$')
_RELEASE = re.compile(r"^(\d+)(?:\.(\d+))?")


def new_version(old: str) -> str:
    """A version no build has seen: `old`'s major.minor, then a random patch ("0.1.0" -> "0.1.734019211").

    Random, not old + 1: every run of every measurement (and of every earlier one) must be new to the
    layer cache, or a bump could be served from a build of an earlier run.
    """
    m = _RELEASE.match(old.strip())
    major, minor = (m[1], m[2] or "0") if m else ("0", "0")
    return f"{major}.{minor}.{secrets.randbelow(10**9) + 1}"


def with_version(text: str, version: str) -> tuple[str, str]:
    """`text` (a pyproject.toml) with the project's version set to `version`; returns (text, old version).

    The version is the `version = "..."` line of [project] (PEP 621), else of [tool.poetry] (Poetry 1
    layout); comments and layout kept. InputError when neither table has a static version (a
    `dynamic = ["version"]` project has nothing to bump in this file).
    """
    lines = text.splitlines(keepends=True)
    for wanted in VERSION_TABLES:
        table = None
        for i, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith("["):
                table = stripped.split("#", 1)[0].strip()
                continue
            m = _VERSION_LINE.match(line.rstrip("\r\n"))
            if table == wanted and m is not None:
                end = line[len(line.rstrip("\r\n")):]
                lines[i] = f"{m[1]}{m[2]}{version}{m[2]}{m[4]}{end}"
                return "".join(lines), m[3]
    raise InputError("pyproject.toml has no static `version = \"...\"` in [project] or [tool.poetry]: "
                     "nothing to bump (a dynamic version lives elsewhere)")


def _normalized(name: str) -> str:
    """A distribution name as indexes compare them (PEP 503): lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _dependency_name(spec: str) -> str:
    m = _DEP_NAME.match(spec)
    if m is None or any(c in spec for c in "\"\n\\"):
        raise InputError(f"dependency {spec!r}: write it as PEP 508, e.g. {DEPENDENCY!r}")
    return _normalized(m[1])


def _locked_names(lock_text: str) -> set[str]:
    """The package names poetry.lock pins."""
    try:
        packages = tomllib.loads(lock_text).get("package", [])
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"poetry.lock of the scratch copy is not valid TOML: {exc}") from exc
    return {_normalized(str(p.get("name", ""))) for p in packages}


def _project_dependencies(pyproject_text: str) -> list[str]:
    try:
        data = tomllib.loads(pyproject_text)
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"pyproject.toml of the scratch copy is not valid TOML: {exc}") from exc
    deps = data.get("project", {}).get("dependencies")
    if not isinstance(deps, list):
        raise InputError("pyproject.toml has no [project] dependencies list to add a dependency to")
    return [str(d) for d in deps]


def _add_dependency(text: str, spec: str) -> str:
    """`text` (a pyproject.toml) with `spec` first in [project].dependencies, comments and layout kept."""
    lines = text.splitlines(keepends=True)
    table = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped
            continue
        if table == "[project]" and re.match(r"dependencies\s*=\s*\[", stripped):
            j = line.index("[")
            rest = line[j + 1:]
            lines[i] = f'{line[: j + 1]}\n    "{spec}",{"" if rest.startswith(chr(10)) else " "}{rest}'
            new = "".join(lines)
            if spec not in _project_dependencies(new):
                break
            return new
    raise InputError("could not find `dependencies = [` in the [project] table of pyproject.toml")


def _without_markers(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(DEPENDENCY_MARKER))


def lock_cache_dir() -> Path:
    """Relocked lock files, one per (project, added dependency, Poetry version)."""
    return config.LAB_HOME / "cache" / "locks"


def relock(project: Path) -> None:
    """`poetry lock --directory <project>` with the host's pinned Poetry (existing pins are kept).

    POETRY_VIRTUALENVS_CREATE=false: locking needs no environment, and Poetry would otherwise
    create one in its own cache (or, with in-project venvs, in the build context).
    """
    cmd = [str(find_poetry()), "lock", "--directory", str(project)]
    env = {**os.environ, **poetry_env(), "POETRY_VIRTUALENVS_CREATE": "false", "POETRY_NO_INTERACTION": "1"}
    run_lock(cmd, env, 600, "the lab relocks its scratch copy with the pinned Poetry")


@dataclass
class Scratch:
    """One scratch copy of the app, at `path`. `edits` lists what was changed in it, in order."""

    name: str
    path: Path
    source: Path
    edits: list[str] = field(default_factory=list)
    #: The project this is a copy of (basecamp.project); None: the repo's own app.
    project: Project | None = None

    def edit_code(self) -> str:
        """Make a real code change the build cannot have seen before; return the line added.

        The line carries a fresh id, so no earlier build (of any step, in any run) has the
        same content in its layer cache: the rebuild after it shows what a code change costs.
        """
        edit_id = uuid.uuid4().hex[:12]
        line = f'BUILD_EDIT = "{edit_id}"  # added by the lab to simulate a code change\n'
        code_file = self.project.code_file if self.project is not None else "annapurna/main.py"
        main = self.path / code_file
        main.write_text(main.read_text() + line)
        self.edits.append(f"{code_file}: {line.strip()}")
        return line.strip()

    def change_dependency(self, package: str = DEPENDENCY) -> str:
        """Make a dependency change the build cache cannot have seen before; return what changed.

        The first call adds `package` (default: DEPENDENCY) to [project].dependencies and relocks
        poetry.lock with the host's pinned Poetry; the lock is kept in LAB_HOME/cache/locks/ so the
        next scratch copy gets it without relocking (~3-10 s). Every call, the first included, also
        writes a comment line with a fresh id at the end of pyproject.toml (replacing the previous
        one): the COPY of pyproject.toml and poetry.lock, and every layer after it, are new to the
        layer cache each time — Poetry re-installs on any pyproject.toml change anyway
        (python-poetry/poetry#1301). Only the copy changes, never the checkout.
        """
        name = _dependency_name(package)
        pyproject, lock = self.path / "pyproject.toml", self.path / "poetry.lock"
        original = pyproject.read_text()
        text = _without_markers(original)
        present = {_dependency_name(d) for d in _project_dependencies(text)}
        added = name not in present
        if added:
            lock_text = lock.read_text()
            if name in _locked_names(lock_text):
                raise InputError(f"{name} is already in poetry.lock: adding it would download nothing new; "
                                 f"pick a package that is not locked yet (the lab's default is {DEPENDENCY!r})")
            text = _add_dependency(text, package)
            key = hashlib.sha256(f"{text}\0{lock_text}\0{config.poetry_version()}".encode()).hexdigest()[:24]
            cached = lock_cache_dir() / f"{key}.lock"
        edit_id = uuid.uuid4().hex[:12]
        marker = f"{DEPENDENCY_MARKER}{edit_id}: {package}\n"
        pyproject.write_text(text + ("" if text.endswith("\n") else "\n") + marker)
        if added:
            if cached.is_file():
                shutil.copyfile(cached, lock)
            else:
                try:
                    relock(self.path)
                except BaseException:
                    pyproject.write_text(original)
                    raise
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(f".tmp{os.getpid()}")
                shutil.copyfile(lock, tmp)
                tmp.replace(cached)
            if (self.path / "uv.lock").is_file():  # a uv step's copy: derive its uv.lock again
                uv_lock(self.path)
        what = f"added {package}, relocked" if added else f"{package} already added"
        self.edits.append(f"pyproject.toml: {what}; marker {edit_id}")
        return f"{what} (marker {edit_id})"

    def bump_version(self, version: str | None = None) -> str:
        """Change the project's version in pyproject.toml, nothing else; return "old -> new".

        `version`: the new one (default: `new_version`, a version no build has seen). A uv step's copy
        (it has a uv.lock) gets its uv.lock derived again: uv.lock records the project's own version, and
        `uv sync --locked` refuses a lock that disagrees with pyproject.toml. poetry.lock is left as it is:
        the pinned Poetry's content-hash does not cover [project].version (`poetry check --lock` passes
        after a bump; the notebook 10_version_bump runs it). Only the copy changes, never the checkout.
        """
        pyproject = self.path / "pyproject.toml"
        original = pyproject.read_text()
        _, old = with_version(original, "0")
        new = version if version is not None else new_version(old)
        text, _ = with_version(original, new)
        pyproject.write_text(text)
        if (self.path / "uv.lock").is_file():
            try:
                uv_lock(self.path)
            except BaseException:
                pyproject.write_text(original)
                raise
        self.edits.append(f"pyproject.toml: version {old} -> {new}")
        return f"{old} -> {new}"

    def state_digest(self) -> str:
        """A hash of every file in the context (paths and contents): equal digests, equal contexts."""
        h = hashlib.sha256()
        for rel in self.files():
            h.update(rel.encode() + b"\0" + (self.path / rel).read_bytes() + b"\0")
        return h.hexdigest()

    def files(self) -> list[str]:
        """Every file in the context, relative to it, sorted: what `COPY . .` sends."""
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file())


def scratch_copy(name: str = "default", source: Path | None = None, *, project: Project | None = None) -> Scratch:
    """A fresh copy of the app's files (pyproject.toml, poetry.lock, README.md, annapurna/).

    `source` defaults to this checkout; any folder holding those files works. `project` (from
    `basecamp.use_project`) copies that project's files instead (`Project.files`), into a copy
    named "<project>-<name>". The copy lives in the git-ignored lab folder and is replaced each
    call, so every notebook starts clean.
    """
    if not _NAME.match(name):
        raise InputError(f"scratch name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
    if project is not None and source is not None:
        raise InputError("scratch_copy: pass `source` or `project`, not both")
    files = config.APP_FILES if project is None else project.files
    if project is not None:
        name, source = project.scratch_name(name), project.root
    src = (source or config.REPO_ROOT).resolve()
    missing = [f for f in files if not (src / f).exists()]
    if missing:
        raise InputError(f"{src} is not a Poetry app folder: missing {', '.join(missing)}")
    dest = config.SCRATCH_DIR / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for item in files:
        if (src / item).is_dir():
            shutil.copytree(src / item, dest / item, ignore=_IGNORED)
        else:
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / item, dest / item)
    if (src / ".dockerignore").is_file():  # what a real `docker build` of the checkout would leave out
        shutil.copy2(src / ".dockerignore", dest / ".dockerignore")
    return Scratch(name=name, path=dest, source=src, project=project)


def context_copy(name: str, project: Project, dockerfile: Path | None = None) -> Scratch:
    """A fresh copy of the whole project folder, as `docker build <project>` would send it: every file
    its .dockerignore does not exclude (matched by the Docker SDK, `docker.utils.build.exclude_paths`).

    The build context for a learner's own Dockerfile (basecamp.yours), which may copy any file of the
    project, not only the ones the steps copy. `dockerfile`, when inside the project, is always kept
    (as `docker build` keeps it). The copy is named "<project>-<name>" and replaced each call.
    """
    from docker.utils.build import exclude_paths

    if not _NAME.match(name):
        raise InputError(f"scratch name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
    src = project.root.resolve()
    ignore = src / ".dockerignore"
    # the Docker SDK's own reading of .dockerignore (docker.api.build): blank and `#` lines dropped
    patterns = [p for p in (line.strip() for line in ignore.read_text().splitlines()) if p and not p.startswith("#")] \
        if ignore.is_file() else []
    kept_file = dockerfile.resolve() if dockerfile is not None else None
    inside = str(kept_file.relative_to(src)) if kept_file is not None and kept_file.is_relative_to(src) else None
    keep = exclude_paths(str(src), patterns, dockerfile=inside)
    dest = config.SCRATCH_DIR / project.scratch_name(name)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    lab = config.LAB_HOME.resolve()
    for rel in sorted(keep):
        item = src / rel
        if item.resolve() == lab or lab in item.resolve().parents:
            continue  # the lab's own folder (scratch copies among them) is never part of a context
        if item.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(item), dest / rel)
        elif item.is_dir():
            (dest / rel).mkdir(parents=True, exist_ok=True)
        elif item.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, dest / rel)
    return Scratch(name=dest.name, path=dest, source=src, project=None if project.is_default else project)
