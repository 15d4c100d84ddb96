"""What a Poetry project is made of, read from its files (for basecamp.project).

`read_layout(root, data)` reads pyproject.toml (already parsed) the way Poetry would: the
project's name (PEP 621 `[project]` or classic `[tool.poetry]`), its packages (declared in
`[tool.poetry].packages`, else Poetry's default: `<name>/`, `<name>.py`, `src/<name>/` or
`src/<name>.py`), its main dependencies (both places), the names of its other dependency groups
and its scripts. Each package keeps where it sits in the project (`source`, e.g. "src/pkg") and
what it is imported as (`name`), so the step Dockerfiles can copy it where it imports.

`check_lock_file(root)` refuses a poetry.lock the pinned Poetry cannot read, with the command
that fixes it. Nothing here runs the project's code: modules are read with `ast` (basecamp.projectcommand).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basecamp import config
from basecamp.errors import InputError
from basecamp.poetry import find_poetry

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIST_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
#: Lock versions Poetry 2 reads (poetry/packages/locker.py: _READ_VERSION_RANGE = ">=1,<3").
READABLE_LOCK_MAJORS = ("1", "2")
#: Top-level folders a project without a package (package-mode = false) keeps no runtime code in.
_NOT_CODE = {"tests", "test", "docs", "doc", "scripts", "build", "dist", "site", "examples", "benchmarks",
             "node_modules", "venv", "env", "migrations"}
_NOT_MODULES = {"setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py", "manage.py"}


@dataclass(frozen=True)
class Package:
    """One top-level package (or single module) of the project.

    `source`: where it sits, relative to the project root ("pkg", "src/pkg", "pkg.py");
    `name`: what it is imported as ("pkg").
    """

    source: str
    name: str

    @property
    def is_module(self) -> bool:
        """A single `.py` file rather than a folder."""
        return self.source.endswith(".py")

    @property
    def in_src(self) -> bool:
        """Not where it imports from: `source` is not just its name (e.g. src/pkg)."""
        return self.source not in (self.name, f"{self.name}.py")


@dataclass(frozen=True)
class Layout:
    """A project's shape as Poetry reads it (see module doc)."""

    name: str
    packages: tuple[Package, ...]
    #: False for `package-mode = false`: no root package is installed, the code is copied as is.
    package_mode: bool
    readme: str | None
    #: Every dependency group other than main (Poetry groups, legacy dev-dependencies, PEP 735).
    extra_groups: tuple[str, ...]
    optional_groups: tuple[str, ...]
    #: The main group's distribution names, normalized (pyproject's both places, and poetry.lock's main group).
    main_dependencies: frozenset[str]
    #: (script name, "module:callable", table it came from), in file order.
    scripts: tuple[tuple[str, str, str], ...]


def normalized(name: str) -> str:
    """A distribution name as indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def module_name(name: str) -> str:
    """The import name Poetry derives from a project name (poetry-core's `module_name`)."""
    return normalized(name).replace("-", "_")


def _poetry(data: dict[str, Any]) -> dict[str, Any]:
    poetry: dict[str, Any] = data.get("tool", {}).get("poetry", {})
    return poetry


def extra_groups(data: dict[str, Any]) -> tuple[str, ...]:
    """Names of every non-main group: [tool.poetry.group.X], legacy dev-dependencies ("dev"), [dependency-groups]."""
    names: list[str] = list(_poetry(data).get("group", {}))
    if "dev-dependencies" in _poetry(data):
        names.append("dev")
    names += list(data.get("dependency-groups", {}))
    return tuple(dict.fromkeys(n for n in names if n != "main"))


def optional_groups(data: dict[str, Any]) -> tuple[str, ...]:
    """Groups marked `optional = true` ([tool.poetry.group.X]): a plain `poetry install` leaves them out."""
    return tuple(n for n, g in _poetry(data).get("group", {}).items()
                 if n != "main" and isinstance(g, dict) and g.get("optional") is True)


def main_dependencies(data: dict[str, Any], lock: dict[str, Any] | None = None) -> frozenset[str]:
    """The main group's distribution names: [project].dependencies, [tool.poetry.dependencies]
    (not `python`, not `optional = true` extras), and what poetry.lock puts in the main group
    (lock-version 2.1 records `groups`; a dependency's own dependencies count, e.g. fastapi[standard]'s uvicorn).
    """
    names: set[str] = set()
    for spec in data.get("project", {}).get("dependencies", []) or []:
        m = _DIST_NAME.match(str(spec))
        if m:
            names.add(normalized(m[1]))
    for key, value in (_poetry(data).get("dependencies", {}) or {}).items():
        if key.lower() == "python" or (isinstance(value, dict) and value.get("optional")):
            continue
        names.add(normalized(key))
    for package in (lock or {}).get("package", []):
        if "main" in (package.get("groups") or []):
            names.add(normalized(str(package.get("name", ""))))
    return frozenset(names)


def _scripts(data: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    found: list[tuple[str, str, str]] = []
    for table, entries in (("[project.scripts]", data.get("project", {}).get("scripts", {})),
                           ("[tool.poetry.scripts]", _poetry(data).get("scripts", {}))):
        for name, value in (entries or {}).items():
            if isinstance(value, dict):  # Poetry: { callable = "m:f" } or { reference = "m:f", type = "console" }
                if value.get("type", "console") != "console":
                    continue
                value = value.get("callable") or value.get("reference")
            if isinstance(value, str) and name not in {s[0] for s in found}:
                found.append((str(name), value.split("[", 1)[0].strip(), table))
    return tuple(found)


def _has_python(path: Path) -> bool:
    return any(p.suffix == ".py" for p in path.rglob("*.py"))


def _declared_packages(root: Path, entries: list[Any]) -> list[Package]:
    """[tool.poetry].packages: plain `include` names (folder or module), optionally `from` one folder."""
    found: list[Package] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("include"), str):
            raise InputError(f"{root}: [tool.poetry].packages entry {entry!r}: the lab needs "
                             '`{ include = "pkg" }` (optionally `from = "src"`)')
        formats = entry.get("format", ["sdist", "wheel"])
        if "wheel" not in ([formats] if isinstance(formats, str) else formats):
            continue  # sdist-only: not part of what gets installed
        include, where = entry["include"], str(entry.get("from", "") or "").strip("/")
        name = include.removesuffix(".py")
        if not _IDENT.match(name) or entry.get("to") or (where and not re.match(r"^[\w.-]+(/[\w.-]+)*$", where)):
            raise InputError(f"{root}: [tool.poetry].packages entry {entry!r} is not supported (globs, nested "
                             "paths and `to` are not): the lab needs one top-level package name per entry, "
                             'e.g. `{ include = "pkg", from = "src" }`')
        source = f"{where}/{include}" if where else include
        path = root / source
        if not (path.is_file() if include.endswith(".py") else path.is_dir()):
            raise InputError(f"{root}: no package {'file' if include.endswith('.py') else 'folder'} {source}"
                             f"{'' if include.endswith('.py') else '/'} (pyproject.toml names it)")
        if path.is_dir() and not _has_python(path):
            raise InputError(f"{root}: package folder {source}/ holds no .py file")
        found.append(Package(source=source, name=name))
    return found


def _default_package(root: Path, name: str) -> Package:
    """Poetry's default: <module>/, <module>.py, src/<module>/, src/<module>.py (poetry-core's Module)."""
    mod = module_name(name)
    for source in (mod, f"{mod}.py", f"src/{mod}", f"src/{mod}.py"):
        if (root / source).is_dir() or (source.endswith(".py") and (root / source).is_file()):
            return Package(source=source, name=mod)
    raise InputError(f"{root}: no package for project {name!r}: Poetry looks for {mod}/, {mod}.py, src/{mod}/ "
                     f'or src/{mod}.py; declare yours in pyproject.toml (`packages = [{{ include = "your_pkg" }}]` '
                     "under [tool.poetry]) or set `package-mode = false` there for an app that is not a package")


def _loose_code(root: Path) -> list[Package]:
    """The code of a project without a package: top-level package folders and modules (not tests, docs...)."""
    found: list[Package] = []
    for base in ("", "src/"):
        folder = root / base if base else root
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            rel = f"{base}{path.name}"
            if path.is_dir() and _IDENT.match(path.name) and path.name not in _NOT_CODE and \
                    not path.name.startswith((".", "_")) and any(path.glob("*.py")):
                found.append(Package(source=rel, name=path.name))
            elif path.is_file() and path.suffix == ".py" and _IDENT.match(path.stem) and path.name not in _NOT_MODULES \
                    and not path.name.startswith("test_"):
                found.append(Package(source=rel, name=path.stem))
        if found:
            return found
    return found


def read_layout(root: Path, data: dict[str, Any], lock: dict[str, Any] | None = None) -> Layout:
    """The project's Layout (module doc); InputError says what is unsupported and what to do."""
    poetry = _poetry(data)
    package_mode = poetry.get("package-mode", True) is not False
    declared = data.get("project", {}).get("name") or poetry.get("name")
    if not declared and package_mode:
        raise InputError(f"{root / 'pyproject.toml'}: no name in [project] (or [tool.poetry])")
    name = str(declared or root.name)
    if not package_mode:
        packages = _loose_code(root)
        if not packages:
            raise InputError(f"{root}: `package-mode = false` and no Python code at the top level (or in src/): "
                             "the lab copies top-level package folders and modules into the image; put the app's "
                             "code there")
    elif poetry.get("packages") is not None:
        packages = _declared_packages(root, list(poetry["packages"]))
        if not packages:
            raise InputError(f"{root}: [tool.poetry].packages installs no package into a wheel")
    else:
        packages = [_default_package(root, name)]
    names = [p.name for p in packages]
    if len(set(names)) != len(names):
        raise InputError(f"{root}: two packages import as the same name ({', '.join(names)}): the runtime steps "
                         "copy each one to its import name; keep one")
    readme = data.get("project", {}).get("readme") or poetry.get("readme")
    if isinstance(readme, dict):
        readme = readme.get("file")
    if isinstance(readme, list):  # [tool.poetry] readme may list several files
        readme = readme[0] if readme else None
    if readme is not None and not (root / str(readme)).is_file():
        raise InputError(f"{root}: pyproject.toml names the readme {readme!r}, which is missing")
    return Layout(name=name, packages=tuple(packages), package_mode=package_mode,
                  readme=str(readme) if readme else None, extra_groups=extra_groups(data),
                  optional_groups=optional_groups(data),
                  main_dependencies=main_dependencies(data, lock), scripts=_scripts(data))


def relock_command(root: Path) -> str:
    """The command that relocks `root` with the lab's pinned Poetry and index settings."""

    try:
        poetry = str(find_poetry())
    except Exception:  # noqa: BLE001 (no Poetry yet: name the one ./lab prepare installs)
        poetry = str(config.LAB_HOME / "tools" / "poetry" / "bin" / "poetry")
    return f"{poetry} lock --directory {root}"


def read_lock(root: Path) -> dict[str, Any]:
    """poetry.lock, parsed; InputError for one that is not TOML or has a lock-version Poetry 2 cannot read.

    Locks written by Poetry 1.x (lock-version 1.1 or 2.0) and 2.x (2.1) are read by the pinned Poetry.
    """
    path = root / "poetry.lock"
    try:
        lock = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a lock file the pinned Poetry can read ({exc}): relock it: "
                         f"`{relock_command(root)}`") from exc
    version = str(lock.get("metadata", {}).get("lock-version", ""))
    if version.split(".")[0] not in READABLE_LOCK_MAJORS:
        generated = re.search(r"@generated by (Poetry [\w.]+)", path.read_text()[:300])
        by = f", written by {generated[1]}" if generated else ""
        raise InputError(f"{path} has lock-version {version or '(none)'}{by}; Poetry {config.poetry_version()} "
                         f"(the lab's pinned Poetry) reads lock-version 1.x and 2.x only: relock it: "
                         f"`{relock_command(root)}`")
    return lock
