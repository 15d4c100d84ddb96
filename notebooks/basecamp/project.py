"""Bring your own project: run the steps and the summary on another Poetry project.

`use_project(path)` reads a Poetry project folder (its pyproject.toml, poetry.lock and packages:
basecamp.projectlayout), finds how its container starts (basecamp.projectcommand) and returns a
`Project`; `scratch_copy`, `measure_step` and `summary_rows` take `project=` (default: this
repo's own app, so every notebook of the series is unchanged).

The step Dockerfiles stay exactly as the learners read them. They name the app's package
(`COPY annapurna ./annapurna`) and its command (`python -m annapurna.main`); for another project
the lab writes a derived copy of each step's Dockerfile (in LAB_HOME/projects/<name>/) where:
- each COPY of the package becomes one COPY per package of the project. A package from `src/`
  goes to `src/<pkg>` in a Dockerfile that installs the project itself (a `poetry install`
  without `--no-root`: Poetry installs it from where pyproject.toml says it is), and to
  `<pkg>` in the others (they install dependencies only, and run the code from the working
  directory, where `<pkg>` imports);
- the ENTRYPOINT's `python -m annapurna.main` becomes the project's command (after
  `poetry run` in steps 1-4; with step 9's absolute `/app/.venv/bin/` prefix on its program);
- `--without dev` becomes `--only main`, and uv's `--no-dev` becomes `--no-default-groups`:
  the runtime venv gets the main dependencies only, whatever the other groups are called
  (`--without dev` leaves out the group named dev and nothing else);
- the README name is swapped when the project's differs.
Nothing else changes, and `Project.dockerfile(step)` shows what will be built.

Results and images are kept apart: records carry the project's name (`Record.project`) and
images are tagged annapurna-lab/<project>-<step>:<label> (the repo's app keeps annapurna-lab/<step>).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, Final

import requests.exceptions

from basecamp import config, poetry, projectcommand, smoke, steps
from basecamp.containers import throwaway
from basecamp.errors import CommandError, InputError
from basecamp.projectlayout import Layout, Package, extra_groups, read_layout, read_lock, relock_command
from basecamp.scratch import lock_cache_dir, relock
from basecamp.smoke import SmokeResult

PROJECT_LABEL = config.PROJECT_LABEL
#: The repo's own app: the package and module every step Dockerfile names.
DEFAULT_NAME = config.DEFAULT_PROJECT
DEFAULT_PACKAGE = "annapurna"
DEFAULT_MODULE = "annapurna.main"
DEFAULT_README = "README.md"
#: `use_project(health_path=AUTO_HEALTH)` (the default): try HEALTH_CANDIDATES in order.
AUTO_HEALTH: Final = "auto"
HEALTH_CANDIDATES = ("/health", "/healthz", "/", "/docs")

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,40}$")
#: The package name as a word of an instruction: not part of `annapurna-lab-poetry`, `org.annapurna.*`.
_PACKAGE_WORD = re.compile(rf"(?<![\w.-]){DEFAULT_PACKAGE}(?![\w.-])")
#: Anything left naming the app after the rewrite (then the lab cannot adapt the step).
_LEFTOVER = re.compile(rf"(?<![\w.-]){DEFAULT_PACKAGE}(?![\w-])")
_README_WORD = re.compile(rf"(?<![\w.-]){re.escape(DEFAULT_README)}(?![\w.-])")
_WITHOUT_DEV = re.compile(r"(?<=\s)--without[ =]dev(?![\w,-])")
_UV_NO_DEV = re.compile(r"(?<=\s)--no-dev(?![\w-])")
_EXEC_FORM = re.compile(r"^(\s*(?:ENTRYPOINT|CMD)\s+)(\[.*\])(\s*)$", re.DOTALL)
_POETRY_INSTALL = re.compile(r"poetry install\b[^&|;\n]*")


@dataclass(frozen=True)
class Project:
    """A Poetry project the lab can build with the step Dockerfiles.

    `name`: what results and image tags carry (the repo's app: "annapurna"). `layout`: its
    packages, each with where it sits (`source`, e.g. "src/pkg") and its import name.
    `command`: what the container runs (exec form, without `poetry run`), `command_reason` why.
    `module`: the module whose code the command runs (a simulated code change edits it).
    `health_paths`: the URL paths the smoke test tries on `port`, in order (empty: an app
    without HTTP, whose smoke test runs the image and wants exit code 0). `extra_groups`: every
    dependency group besides main (none of them goes into a runtime image); `optional_groups`: those
    marked `optional = true` (a plain `poetry install` leaves them out too). `package_mode`:
    False for `package-mode = false` (no root package to install).
    """

    name: str
    root: Path
    layout: tuple[Package, ...]
    module: str
    readme: str | None
    command: tuple[str, ...]
    command_reason: str = ""
    health_paths: tuple[str, ...] = ("/health",)
    extra_groups: tuple[str, ...] = ()
    optional_groups: tuple[str, ...] = ()
    port: int = 8000
    package_mode: bool = True
    is_default: bool = False

    @property
    def packages(self) -> tuple[str, ...]:
        """The package folders (or modules), relative to `root`, that the Dockerfiles copy."""
        return tuple(p.source for p in self.layout)

    @property
    def kept_at_source(self) -> tuple[Package, ...]:
        """Packages the command imports by their source path (`uvicorn src.app.main:app` for src/app):
        every step copies these to where they sit in the project, not to their import name."""
        return projectcommand.imports_by_source(self.layout, self.module)

    @property
    def health_path(self) -> str | None:
        """The first path the smoke test tries (None: no HTTP)."""
        return self.health_paths[0] if self.health_paths else None

    @property
    def has_dev_group(self) -> bool:
        return "dev" in self.extra_groups

    @property
    def files(self) -> tuple[str, ...]:
        """What a scratch copy holds: pyproject.toml, poetry.lock, the README (if any), the packages."""
        if self.is_default:
            return config.APP_FILES
        return ("pyproject.toml", "poetry.lock", *([self.readme] if self.readme else []), *self.packages)

    @property
    def code_file(self) -> str:
        """The file a simulated code change appends to: the module the command runs (else a file of the code)."""
        found = projectcommand.module_file(self.root, self.layout, self.module)
        if found is not None:
            return found
        first = self.layout[0]
        if first.is_module:
            return first.source
        files = sorted(self.root.joinpath(first.source).rglob("*.py"))
        return str(files[0].relative_to(self.root)) if files else f"{first.source}/__init__.py"

    def describe(self) -> str:
        """One line: what the container runs and why, and what the smoke test asks."""
        health = (f"the smoke test asks {', '.join(self.health_paths)} on port {self.port}"
                  + (" (the first to answer 2xx counts)" if len(self.health_paths) > 1 else "")
                  if self.health_paths else "no HTTP: the smoke test wants the app to exit 0")
        return f"{self.name}: {self.command_reason}. Command: {json.dumps(list(self.command))}; {health}."

    def image_tag(self, step: str, label: str = "latest") -> str:
        """annapurna-lab/<step>:<label> for the repo's app, annapurna-lab/<name>-<step>:<label> otherwise."""
        if self.is_default:
            return steps.image_tag(step, label)
        return f"{config.IMAGE_REPO_PREFIX}/{self.name}-{steps.step_name(step)}:{label}"

    def scratch_name(self, name: str) -> str:
        """A scratch-copy name that cannot collide with the repo app's (or another project's)."""
        return name if self.is_default else f"{self.name}-{name}"

    def _command_in(self, line: str) -> str | None:
        """`line` with the exec-form `python -m annapurna.main` replaced by the project's command, or None."""
        m = _EXEC_FORM.match(line)
        if m is None:
            return None
        try:
            argv = json.loads(m[2])
        except json.JSONDecodeError:
            return None
        for i in range(len(argv) - 2):
            if argv[i + 1:i + 3] == ["-m", DEFAULT_MODULE] and PurePosixPath(argv[i]).name.startswith("python"):
                command = list(self.command)
                if "/" in argv[i] and "/" not in command[0]:  # step 9: the venv's programs by absolute path
                    command[0] = f"{PurePosixPath(argv[i]).parent}/{command[0]}"
                argv[i:i + 3] = command
                return f"{m[1]}{json.dumps(argv)}{m[3]}"
        return None

    def _package_lines(self, line: str, to_source: bool) -> list[str]:
        """One line per package for a line naming the app's package (`COPY annapurna ./annapurna`)."""
        out = []
        copies_context = re.match(r"\s*(COPY|ADD)\s", line) is not None and "--from" not in line
        for pkg in self.layout:
            dest = pkg.source if to_source or pkg in self.kept_at_source else \
                (f"{pkg.name}.py" if pkg.is_module else pkg.name)
            first = [copies_context]

            def repl(_: re.Match[str], pkg: Package = pkg, dest: str = dest, first: list[bool] = first) -> str:
                if first[0]:  # the COPY's source: where the package sits in the build context
                    first[0] = False
                    return pkg.source
                return dest

            out.append(_PACKAGE_WORD.sub(repl, line))
        return out

    def _rewrite(self, line: str, done: set[str]) -> str:
        """`line` with the command, README, group flags rewritten; what changed goes into `done`."""
        rules: list[tuple[str, bool, Any]] = [
            ("readme", bool(self.readme and self.readme != DEFAULT_README) and bool(_README_WORD.search(line)),
             lambda t: _README_WORD.sub(str(self.readme), t)),
            ("only-main", bool(_WITHOUT_DEV.search(line)), lambda t: _WITHOUT_DEV.sub("--only main", t)),
            ("uv-groups", "uv sync" in line and bool(_UV_NO_DEV.search(line)),
             lambda t: _UV_NO_DEV.sub("--no-default-groups", t)),
        ]
        command = self._command_in(line)
        if command is not None:
            line = command
            done.add("command")
        for key, applies, rewrite in rules:
            if applies:
                line = rewrite(line)
                done.add(key)
        return line

    def adapt(self, text: str, source: str = "Dockerfile") -> str:
        """A step Dockerfile's text with the app's names replaced by this project's (see module doc).

        Comments are left as they are; a note on top says what was replaced. Raises InputError when
        an instruction still names the app after the rewrite (a step this adaptation cannot handle).
        """
        if self.is_default:
            return text
        installs_root = any("--no-root" not in m[0] for m in _POETRY_INSTALL.finditer(
            "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))))
        to_source = installs_root and self.package_mode
        out: list[str] = []
        done: set[str] = set()
        for number, line in enumerate(text.splitlines(keepends=True), 1):
            if line.lstrip().startswith("#"):
                out.append(line)
                continue
            line = self._rewrite(line, done)
            if _PACKAGE_WORD.search(line):
                out += self._package_lines(line, to_source)
                done.add("package")
            else:
                out.append(line)
            if _LEFTOVER.search(out[-1]):
                raise InputError(f"{source}:{number}: `{line.strip()}` names the app in a way the lab cannot "
                                 f"adapt to project {self.name!r}")
        out_of = {pkg.source: pkg.source if to_source or pkg in self.kept_at_source else pkg.name
                  for pkg in self.layout}
        changes = []
        if "package" in done:
            changes.append(f"{DEFAULT_PACKAGE} -> " + " ".join(s if s == d else f"{s} (to ./{d})" for s, d in out_of.items()))
        if "command" in done:
            changes.append(f"python -m {DEFAULT_MODULE} -> {shlex.join(self.command)}")
        if "readme" in done:
            changes.append(f"{DEFAULT_README} -> {self.readme}")
        groups = f" (leaves out {', '.join(self.extra_groups)})" if self.extra_groups else ""
        if "only-main" in done:
            changes.append(f"--without dev -> --only main: the main group only{groups}")
        if "uv-groups" in done:
            changes.append(f"--no-dev -> --no-default-groups: the main dependencies only{groups}")
        if not {"only-main", "uv-groups"} & done and self.extra_groups and "poetry install" in text:
            default = [g for g in self.extra_groups if g not in self.optional_groups]
            left = f"; not the optional {', '.join(self.optional_groups)}" if self.optional_groups else ""
            changes.append(f"this step installs every group ({', '.join(default)} too{left}), as written" if default
                           else f"this step installs the main group (the optional {', '.join(self.optional_groups)} "
                                "only with --with), as written")
        note = f"# Derived by the lab from {source} for project {self.name!r}: {'; '.join(changes) or 'unchanged'}.\n"
        return note + "".join(out)

    def dockerfile(self, step: str) -> Path:
        """The Dockerfile to build `step` with: the step's own, or this project's derived copy of it."""
        return self.derive_dockerfile(steps.dockerfile(step))

    def derive_dockerfile(self, original: Path) -> Path:
        """This project's copy of a step's Dockerfile `original` (already located), written when it changed."""
        if self.is_default:
            return original
        text = self.adapt(original.read_text(), f"dockerfiles/{original.name}")
        path = config.LAB_HOME / "projects" / self.name / "dockerfiles" / original.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        return path

    def smoke_test(self, image: str, *, timeout_s: float = 60) -> SmokeResult:
        """The project's smoke test: GET `health_paths` on `port` (the first 2xx wins), or, without HTTP,
        run the image and want exit 0."""
        if self.health_paths:
            return smoke.smoke_test(image, port=self.port, paths=self.health_paths, timeout_s=timeout_s)
        t0 = time.perf_counter()
        code, logs = _run_to_exit(image, timeout_s)
        ok = code == 0
        error = "" if ok else ("timed out" if code is None else f"the app exited with code {code}")
        return SmokeResult(image, ok, None, "", time.perf_counter() - t0, None, logs, error, code, "")


def _run_to_exit(image: str, timeout_s: float) -> tuple[int | None, str]:
    """Run `image` as built (its own entrypoint), labelled, no network; (exit code or None on timeout, logs)."""
    with throwaway(image, start=True, what="smoke test", network_disabled=True) as container:
        try:
            code: int | None = int(container.wait(timeout=timeout_s).get("StatusCode", -1))
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError):  # the SDK's wait timeout
            code = None
        return code, container.logs(tail=40).decode(errors="replace")


@cache
def default_project() -> Project:
    """The repo's own app: annapurna/, `python -m annapurna.main`, /health on 8000."""
    groups = extra_groups(tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text()))
    return Project(name=DEFAULT_NAME, root=config.REPO_ROOT, layout=(Package(DEFAULT_PACKAGE, DEFAULT_PACKAGE),),
                   module=DEFAULT_MODULE, readme=DEFAULT_README, command=("python", "-m", DEFAULT_MODULE),
                   command_reason="the step Dockerfiles' own command", extra_groups=groups, is_default=True)


def resolve(project: Project | None) -> Project:
    """`project`, or the repo's own app when None."""
    return default_project() if project is None else project


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def use_project(
    path: str | Path,
    *,
    command: Sequence[str] | None = None,
    module: str | None = None,
    port: int = 8000,
    health_path: str | None = AUTO_HEALTH,
    name: str | None = None,
    check_lock: bool = True,
) -> Project:
    """Read the Poetry project at `path`, find how it starts, check the lab can build it; print what was chosen.

    It needs pyproject.toml and poetry.lock, and its code: packages as Poetry finds them (flat,
    namespace, `src/`, several) or, with `package-mode = false`, the top-level code folders and
    modules. `command`: what the container runs (exec form, e.g. ["uvicorn", "pkg.main:app",
    "--host", "0.0.0.0", "--port", "8000"]); `module`: shorthand for ["python", "-m", module];
    neither: found by the rules of basecamp.projectcommand. The app must answer HTTP 2xx on `port`
    (0.0.0.0) at `health_path`; by default (AUTO_HEALTH) the smoke test tries /health, /healthz, /,
    /docs and the first 2xx counts; health_path=None for an app that just runs and exits 0.
    `name` (default: the project's name) keys its results and image tags. With `check_lock`,
    poetry.lock must be one the pinned Poetry reads and `poetry check --lock` must pass.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    if root == config.REPO_ROOT.resolve() and module is None and name is None and command is None:
        return default_project()
    layout = _read_project(root, check_lock)
    key = _project_key(root, name or layout.name)
    health_paths = _health_paths(port, health_path)
    if command is not None and module is not None:
        raise InputError("use_project: pass `command` or `module`, not both (module='x' is command=['python', '-m', 'x'])")
    if command is not None:
        found = projectcommand.given(root, layout, command)
    elif module is not None:
        found = projectcommand.from_module(root, layout, module)
    else:
        found = projectcommand.detect(root, layout, port)
    project = Project(
        name=key, root=root, layout=layout.packages, module=found.module, readme=layout.readme,
        command=found.argv, command_reason=found.reason, health_paths=health_paths,
        extra_groups=layout.extra_groups, optional_groups=layout.optional_groups, port=port,
        package_mode=layout.package_mode,
    )
    if check_lock:
        _check_lock(root)
    print(project.describe())
    return project


def _read_project(root: Path, check_lock: bool) -> Layout:
    """The project's layout from its pyproject.toml and poetry.lock (an unreadable lock is fatal only with
    `check_lock`); InputError when either file is missing or pyproject.toml is not TOML."""
    missing = [f for f in ("pyproject.toml", "poetry.lock") if not (root / f).is_file()]
    if missing:
        hint = f" (run `{relock_command(root)}`)" if missing == ["poetry.lock"] else ""
        raise InputError(f"{root} is not a Poetry project the lab can build: missing {', '.join(missing)}{hint}")
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{root / 'pyproject.toml'} is not valid TOML: {exc}") from exc
    lock: dict[str, Any] = {}
    if check_lock:
        lock = read_lock(root)
    else:
        try:
            lock = read_lock(root)
        except InputError:
            pass
    return read_layout(root, data, lock)


def _project_key(root: Path, name: str) -> str:
    """The key a project's results and image tags carry: its name, normalized (and never the app's own)."""
    key = _normalized(name)
    if not _KEY.match(key):
        raise InputError(f"project name {key!r}: use lower-case letters, digits, '.', '_' or '-' (40 at most)")
    if key == DEFAULT_NAME:
        # another folder with the app's name: keep its results and images apart from the repo's
        key = f"{key}-{hashlib.sha256(str(root).encode()).hexdigest()[:6]}"
    return key


def _health_paths(port: int, health_path: str | None) -> tuple[str, ...]:
    """The paths the smoke test asks (AUTO_HEALTH: HEALTH_CANDIDATES; None: none, an app without HTTP)."""
    if not 0 < port < 65536:
        raise InputError(f"port {port}: use 1-65535")
    if health_path is not None and health_path != AUTO_HEALTH and not health_path.startswith("/"):
        raise InputError(f"health_path {health_path!r}: must start with '/' (or None for an app without HTTP)")
    return HEALTH_CANDIDATES if health_path == AUTO_HEALTH else (health_path,) if health_path else ()


def _check_lock(root: Path) -> None:
    """InputError, with the command that relocks, when the pinned Poetry cannot use the project's poetry.lock."""
    try:
        poetry.check_lock(root)
    except CommandError as exc:
        raise InputError(f"{root}: the pinned Poetry cannot use this poetry.lock (`poetry check --lock` "
                         f"failed: it does not match pyproject.toml, or Poetry cannot read it): relock it: "
                         f"`{relock_command(root)}`. {exc}") from exc


# ---------------------------------------------------------------------------------------------
# A tiny example project to try it on

EXAMPLE_PACKAGE = "hello_svc"
#: The example's one dependency: a small pure-Python wheel with no dependencies, pinned exactly.
EXAMPLE_DEPENDENCY = "six (==1.17.0)"

_EXAMPLE_PYPROJECT = f'''[project]
name = "hello-svc"
version = "0.1.0"
description = "A tiny HTTP service the lab builds with the step Dockerfiles (basecamp.example_project)."
readme = "README.md"
requires-python = ">=3.11,<4.0"
dependencies = [
    "{EXAMPLE_DEPENDENCY}",
]

[tool.poetry]
packages = [{{ include = "{EXAMPLE_PACKAGE}" }}]

[build-system]
requires = ["poetry-core>=2.0.0,<3.0.0"]
build-backend = "poetry.core.masonry.api"
'''

_EXAMPLE_MAIN = '''"""Serve /health and / on 0.0.0.0:$PORT (default 8000) with the standard library alone."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import six


class Handler(BaseHTTPRequestHandler):
    """Answer JSON: {"status": "ok"} at /health, a greeting at /."""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        body = {"/health": {"status": "ok"}, "/": {"message": "Hello from hello_svc", "six": six.__version__}}
        found = body.get(self.path)
        data = json.dumps(found or {"error": "not found"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    """Serve until stopped."""
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()


if __name__ == "__main__":
    main()
'''


def example_project(path: str | Path) -> Project:
    """Write a tiny Poetry project (hello_svc: http.server, one small dependency) at `path`, locked.

    The folder must be empty or missing. The lock is made with the pinned Poetry and the lab's
    index settings, and kept in LAB_HOME/cache/locks/ so the next example needs no resolving.
    """
    root = Path(path).expanduser().resolve()
    if root.exists() and any(root.iterdir()):
        raise InputError(f"{root}: the example project needs an empty (or missing) folder")
    (root / EXAMPLE_PACKAGE).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(_EXAMPLE_PYPROJECT)
    (root / "README.md").write_text("# hello-svc\n\nA tiny service for trying the lab on another project.\n")
    (root / EXAMPLE_PACKAGE / "__init__.py").write_text('"""hello_svc: a tiny HTTP service."""\n')
    (root / EXAMPLE_PACKAGE / "main.py").write_text(_EXAMPLE_MAIN)
    key = hashlib.sha256(f"{_EXAMPLE_PYPROJECT}\0{config.poetry_version()}".encode()).hexdigest()[:24]
    cached = lock_cache_dir() / f"example-{key}.lock"
    if cached.is_file():
        shutil.copyfile(cached, root / "poetry.lock")
    else:
        relock(root)
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "poetry.lock", cached)
    return use_project(root)
