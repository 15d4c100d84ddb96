"""Bring your own project: run the steps and the summary on another Poetry project.

`use_project(path)` reads a Poetry project folder (its pyproject.toml, poetry.lock and package)
and returns a `Project`; `scratch_copy`, `measure_step` and `summary_rows` take `project=`
(default: this repo's own app, so every notebook of the series is unchanged).

The step Dockerfiles stay exactly as the learners read them. They name the app's package
(`COPY annapurna ./annapurna`) and its module (`python -m annapurna.main`); for another project
the lab writes a derived copy of each step's Dockerfile (in LAB_HOME/projects/<name>/) with those
two names replaced, the README name swapped when the project's differs, and `--without dev`
dropped when the project has no dev group (Poetry 2 refuses to leave out a group that does not
exist). Nothing else changes, and `Project.dockerfile(step)` shows what will be built.

Results and images are kept apart: records carry the project's name (`Record.project`) and
images are tagged annapurna-lab/<project>-<step>:<label> (the repo's app keeps annapurna-lab/<step>).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basecamp import config
from basecamp.errors import CommandError, InputError

if TYPE_CHECKING:
    from basecamp.smoke import SmokeResult

#: Label naming the project an image was built from (besides steps.STEP_LABEL).
PROJECT_LABEL = "org.annapurna.project"
#: The repo's own app: the package and module every step Dockerfile names.
DEFAULT_NAME = "annapurna"
DEFAULT_PACKAGE = "annapurna"
DEFAULT_MODULE = "annapurna.main"
DEFAULT_README = "README.md"

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,40}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The package name as a word of an instruction: not part of `annapurna-lab-poetry`, `org.annapurna.*`.
_PACKAGE_WORD = re.compile(rf"(?<![\w.-]){DEFAULT_PACKAGE}(?![\w.-])")
_MODULE_WORD = re.compile(rf"(?<![\w.-]){re.escape(DEFAULT_MODULE)}(?![\w.-])")
#: Anything left naming the app after the rewrite (then the lab cannot adapt the step).
_LEFTOVER = re.compile(rf"(?<![\w.-]){DEFAULT_PACKAGE}(?![\w-])")
_README_WORD = re.compile(rf"(?<![\w.-]){re.escape(DEFAULT_README)}(?![\w.-])")
_WITHOUT_DEV = re.compile(r"\s--without[ =]dev(?![\w,-])")


@dataclass(frozen=True)
class Project:
    """A Poetry project the lab can build with the step Dockerfiles.

    `name`: what results and image tags carry (the repo's app: "annapurna"). `packages`: the
    package folders, relative to `root`, that the Dockerfiles copy. `module`: what
    `python -m` runs. `health_path`: the URL path the smoke test polls on `port`; None for an
    app without HTTP, whose smoke test runs the image and wants exit code 0.
    """

    name: str
    root: Path
    packages: tuple[str, ...]
    module: str
    readme: str | None
    has_dev_group: bool
    port: int = 8000
    health_path: str | None = "/health"
    is_default: bool = False

    @property
    def files(self) -> tuple[str, ...]:
        """What a scratch copy holds: pyproject.toml, poetry.lock, the README (if any), the packages."""
        if self.is_default:
            return config.APP_FILES
        return ("pyproject.toml", "poetry.lock", *([self.readme] if self.readme else []), *self.packages)

    @property
    def code_file(self) -> str:
        """The file a simulated code change appends to: the module `python -m` runs."""
        path = self.module.replace(".", "/")
        return f"{path}/__main__.py" if (self.root / path).is_dir() else f"{path}.py"

    def image_tag(self, step: str, label: str = "latest") -> str:
        """annapurna-lab/<step>:<label> for the repo's app, annapurna-lab/<name>-<step>:<label> otherwise."""
        from basecamp.steps import image_tag, step_name

        if self.is_default:
            return image_tag(step, label)
        return f"{config.IMAGE_REPO_PREFIX}/{self.name}-{step_name(step)}:{label}"

    def scratch_name(self, name: str) -> str:
        """A scratch-copy name that cannot collide with the repo app's (or another project's)."""
        return name if self.is_default else f"{self.name}-{name}"

    def adapt(self, text: str, source: str = "Dockerfile") -> str:
        """A step Dockerfile's text with the app's names replaced by this project's (see module doc).

        Comments are left as they are; a note on top says what was replaced. Raises InputError when
        an instruction still names the app after the rewrite (a step this adaptation cannot handle).
        """
        if self.is_default:
            return text
        out: list[str] = []
        for number, line in enumerate(text.splitlines(keepends=True), 1):
            if line.lstrip().startswith("#"):
                out.append(line)
                continue
            line = _MODULE_WORD.sub(self.module, line)
            if self.readme and self.readme != DEFAULT_README:
                line = _README_WORD.sub(self.readme, line)
            if not self.has_dev_group:
                line = _WITHOUT_DEV.sub("", line)
            if _PACKAGE_WORD.search(line):
                # one instruction per package: `COPY annapurna ./annapurna` -> `COPY a ./a`, `COPY b ./b`
                out += [_PACKAGE_WORD.sub(pkg, line) for pkg in self.packages]
            else:
                out.append(line)
            if _LEFTOVER.search(out[-1]):
                raise InputError(f"{source}:{number}: `{line.strip()}` names the app in a way the lab cannot "
                                 f"adapt to project {self.name!r}")
        changes = [f"{DEFAULT_PACKAGE} -> {' '.join(self.packages)}", f"{DEFAULT_MODULE} -> {self.module}"]
        if self.readme and self.readme != DEFAULT_README:
            changes.append(f"{DEFAULT_README} -> {self.readme}")
        if not self.has_dev_group:
            changes.append("--without dev dropped (the project has no dev group)")
        note = f"# Derived by the lab from {source} for project {self.name!r}: {'; '.join(changes)}.\n"
        return note + "".join(out)

    def dockerfile(self, step: str) -> Path:
        """The Dockerfile to build `step` with: the step's own, or this project's derived copy of it."""
        from basecamp.steps import dockerfile

        original = dockerfile(step)
        if self.is_default:
            return original
        text = self.adapt(original.read_text(), f"dockerfiles/{original.name}")
        path = config.LAB_HOME / "projects" / self.name / "dockerfiles" / original.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        return path

    def smoke_test(self, image: str, *, timeout_s: float = 60) -> SmokeResult:
        """The project's smoke test: GET `health_path` on `port`, or, without HTTP, run it and want exit 0."""
        from basecamp.smoke import SmokeResult, smoke_test

        if self.health_path is not None:
            return smoke_test(image, port=self.port, path=self.health_path, timeout_s=timeout_s)
        t0 = time.perf_counter()
        code, logs = _run_to_exit(image, timeout_s)
        ok = code == 0
        error = "" if ok else ("timed out" if code is None else f"the app exited with code {code}")
        return SmokeResult(image, ok, None, "", time.perf_counter() - t0, None, logs, error, code, "")


def _run_to_exit(image: str, timeout_s: float) -> tuple[int | None, str]:
    """Run `image` as built (its own entrypoint), labelled, no network; (exit code or None on timeout, logs)."""
    import docker.errors
    import requests.exceptions

    from basecamp import engine
    from basecamp.errors import LabError

    client = engine.client()
    try:
        container = client.containers.create(image, labels=config.lab_labels(), network_disabled=True)
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"smoke test: no image {image!r} in the engine: build it first") from exc
    except docker.errors.APIError as exc:
        raise LabError(f"smoke test: the engine could not create a container of {image}: {exc}") from exc
    try:
        container.start()
        try:
            code: int | None = int(container.wait(timeout=timeout_s).get("StatusCode", -1))
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError):  # the SDK's wait timeout
            code = None
        return code, container.logs(tail=40).decode(errors="replace")
    finally:
        container.remove(force=True)


@cache
def default_project() -> Project:
    """The repo's own app: annapurna/, `python -m annapurna.main`, /health on 8000."""
    return Project(name=DEFAULT_NAME, root=config.REPO_ROOT, packages=(DEFAULT_PACKAGE,), module=DEFAULT_MODULE,
                   readme=DEFAULT_README, has_dev_group=True, is_default=True)


def resolve(project: Project | None) -> Project:
    """`project`, or the repo's own app when None."""
    return default_project() if project is None else project


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _packages(root: Path, data: dict[str, Any], name: str) -> tuple[str, ...]:
    """The package folders: [tool.poetry].packages (`include`, no `from`), else the name's folder."""
    declared = data.get("tool", {}).get("poetry", {}).get("packages")
    if declared is None:
        guess = name.replace("-", "_").replace(".", "_")
        if (root / "src" / guess).is_dir() and not (root / guess).is_dir():
            raise InputError(f"{root}: a src/ layout ({root / 'src' / guess}) is not supported: the runtime steps "
                             "run `python -m` from the folder the package is copied to; move it to the top level")
        declared = [{"include": guess}]
    found: list[str] = []
    for entry in declared:
        include = str(entry.get("include", "")) if isinstance(entry, dict) else ""
        if isinstance(entry, dict) and entry.get("from"):
            raise InputError(f"{root}: package {include!r} comes `from` {entry['from']!r}; the lab supports "
                             "top-level packages only (the runtime steps run `python -m` next to them)")
        if not _IDENT.match(include):
            raise InputError(f"{root}: package entry {entry!r} in [tool.poetry].packages: the lab needs a plain "
                             "package folder name (no globs, no paths)")
        if not (root / include).is_dir():
            raise InputError(f"{root}: no package folder {include}/ (pyproject.toml names it)")
        found.append(include)
    if not found:
        raise InputError(f"{root}: pyproject.toml declares no package")
    return tuple(found)


def _has_dev_group(data: dict[str, Any]) -> bool:
    groups = data.get("tool", {}).get("poetry", {}).get("group", {})
    return "dev" in groups or "dev" in data.get("dependency-groups", {}) or \
        "dev-dependencies" in data.get("tool", {}).get("poetry", {})


def _module(root: Path, packages: tuple[str, ...], module: str | None) -> str:
    if module is not None:
        if not all(_IDENT.match(part) for part in module.split(".")):
            raise InputError(f"module {module!r}: write a dotted module name, e.g. 'my_app.main'")
        path = root / module.replace(".", "/")
        if not (path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()):
            raise InputError(f"{root}: module {module!r} not found (no {path.with_suffix('.py').name} "
                             f"or {module.replace('.', '/')}/__main__.py)")
        return module
    for pkg in packages:
        if (root / pkg / "main.py").is_file():
            return f"{pkg}.main"
        if (root / pkg / "__main__.py").is_file():
            return pkg
    raise InputError(f"{root}: no {packages[0]}/main.py or {packages[0]}/__main__.py to run: "
                     "pass module='your_package.your_module' (what `python -m` should run)")


def use_project(
    path: str | Path,
    *,
    module: str | None = None,
    port: int = 8000,
    health_path: str | None = "/health",
    name: str | None = None,
    check_lock: bool = True,
) -> Project:
    """Read the Poetry project at `path` and check the lab can build it.

    It needs pyproject.toml, poetry.lock and a top-level package folder. `module` is what
    `python -m` runs (default: <package>.main, else the package's __main__). The app must serve
    HTTP 200 at `health_path` on `port` (0.0.0.0) — or pass health_path=None for an app that
    just runs and exits 0. `name` (default: the project's name) keys its results and image tags.
    With `check_lock`, `poetry check --lock` must pass: the lock matches pyproject.toml.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    if root == config.REPO_ROOT.resolve() and module is None and name is None:
        return default_project()
    missing = [f for f in ("pyproject.toml", "poetry.lock") if not (root / f).is_file()]
    if missing:
        hint = " (run `poetry lock` with the pinned Poetry)" if missing == ["poetry.lock"] else ""
        raise InputError(f"{root} is not a Poetry project the lab can build: missing {', '.join(missing)}{hint}")
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{root / 'pyproject.toml'} is not valid TOML: {exc}") from exc
    declared = data.get("project", {}).get("name") or data.get("tool", {}).get("poetry", {}).get("name")
    if not declared:
        raise InputError(f"{root / 'pyproject.toml'}: no name in [project] (or [tool.poetry])")
    key = _normalized(name or str(declared))
    if not _KEY.match(key):
        raise InputError(f"project name {key!r}: use lower-case letters, digits, '.', '_' or '-' (40 at most)")
    if key == DEFAULT_NAME:
        # another folder with the app's name: keep its results and images apart from the repo's
        key = f"{key}-{hashlib.sha256(str(root).encode()).hexdigest()[:6]}"
    packages = _packages(root, data, str(declared))
    readme = data.get("project", {}).get("readme") or data.get("tool", {}).get("poetry", {}).get("readme")
    if isinstance(readme, dict):
        readme = readme.get("file")
    if readme is not None and not (root / str(readme)).is_file():
        raise InputError(f"{root}: pyproject.toml names the readme {readme!r}, which is missing")
    if not 0 < port < 65536:
        raise InputError(f"port {port}: use 1-65535")
    if health_path is not None and not health_path.startswith("/"):
        raise InputError(f"health_path {health_path!r}: must start with '/' (or None for an app without HTTP)")
    project = Project(
        name=key, root=root, packages=packages, module=_module(root, packages, module),
        readme=str(readme) if readme else None, has_dev_group=_has_dev_group(data), port=port,
        health_path=health_path,
    )
    if check_lock:
        from basecamp.poetry import check_lock as poetry_check_lock

        try:
            poetry_check_lock(root)
        except CommandError as exc:
            raise InputError(f"{root}: poetry.lock does not match pyproject.toml (`poetry check --lock` "
                             f"failed): relock it with the pinned Poetry (`poetry lock --directory {root}`). "
                             f"{exc}") from exc
    return project


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
    from basecamp.scratch import lock_cache_dir, relock

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
