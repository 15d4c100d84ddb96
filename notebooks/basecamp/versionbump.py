"""The version bump (notebook 10): which steps reinstall every dependency when only the version changes,
the fixes measured with the same protocol, and the venv that does not travel.

- `measure_extra` measures a Dockerfile of dockerfiles/extras/ with the protocol of `basecamp.measure`
  (the same `_Session`: warm-up, verified runs, results records), keyed by its file name ("10-version-stage").
- `bump_rows` turns version-bump measurements into rows: median, spread, downloads, and whether the
  dependency install re-ran (`measure.dependency_install_reran`), read from each run's build.
- `lock_after_bump` bumps a scratch copy's version and asks the pinned Poetry whether poetry.lock is
  still fresh (`poetry check --lock`), and uv whether uv.lock is (`uv lock --check`): what each lock
  records of the project's own version, measured rather than assumed.
- `installed_version` reads the project's version in an image the way the app would
  (`importlib.metadata.version`), or says it is not installed.
- `venv_travel` builds a runtime whose base has no interpreter where the builder's venv points, and
  shows what the container says, and what a smoke RUN in the final stage says at build time.
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors

from basecamp import config, disk, enginelock, process
from basecamp.build import build
from basecamp.containers import throwaway
from basecamp.errors import BuildError, InputError
from basecamp.index import poetry_env
from basecamp.lesson import show_code
from basecamp.measure import (
    _check_repeats,
    _Session,
    check_scenarios,
    default_repeats,
)
from basecamp.poetry import find_poetry
from basecamp.probe import run_in_image
from basecamp.project import resolve
from basecamp.runs import Run, StepMeasurement, fmt_range
from basecamp.scratch import new_version, scratch_copy, with_version
from basecamp.steps import dockerfile, instruction_diff
from basecamp.tables import aligned as _aligned
from basecamp.uvlock import find_uv, lock, uv_env
from basecamp.verify import dependency_install_reran

if TYPE_CHECKING:
    from basecamp.display import BuildDisplay
    from basecamp.measure import Log

EXTRAS_DIR = config.DOCKERFILES_DIR / "extras"
SCENARIO = "version-bump"
#: The fixes notebook 10 measures, by key (the file name without ".Dockerfile").
FIXES = ("10-version-stage", "10-bind-mount")
#: The runtime whose base has no interpreter where the venv's links point (the venv that does not travel).
TRAVEL_DOCKERFILE = EXTRAS_DIR / "10-venv-elsewhere.Dockerfile"
#: Its stages: the runtime without a check, and the same runtime with a smoke RUN that must fail the build.
TRAVEL_UNCHECKED, TRAVEL_CHECKED = "runtime", "checked"
#: What the app reads as its version (the installed distribution's metadata).
VERSION_CODE = ("import importlib.metadata as m\n"
                "try:\n    print(m.version('annapurna'))\n"
                "except m.PackageNotFoundError:\n    print('<not installed>')")
NOT_INSTALLED = "<not installed>"
#: Terminal colour codes (uv colours its messages even without a terminal unless NO_COLOR is set).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def extra_dockerfile(key: str) -> Path:
    """dockerfiles/extras/<key>.Dockerfile; InputError when there is none."""
    path = EXTRAS_DIR / f"{key}.Dockerfile"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in EXTRAS_DIR.glob("10-*.Dockerfile")))
        raise InputError(f"no extra Dockerfile {path.name} (notebook 10's: {known})")
    return path


def measure_extra(
    key: str,
    *,
    scenarios: Sequence[str] = (SCENARIO,),
    repeats: int | None = None,
    target: str | None = "runtime",
    display: BuildDisplay | str | None = None,
    log: Log | None = print,
    results_path: Path | None = None,
) -> StepMeasurement:
    """Measure dockerfiles/extras/<key>.Dockerfile with the steps' protocol (basecamp.measure), on a fresh
    scratch copy of the app named "measure-<key>"; its records carry `key` as their step.

    Default: the version-bump scenario only (after a warm-up build), `repeats` as measure_step's.
    """
    path = extra_dockerfile(key)
    wanted = check_scenarios(scenarios)
    n = default_repeats() if repeats is None else _check_repeats(repeats)
    app = scratch_copy(f"measure-{key}")
    session = _Session(key, path, app, target, display, log or (lambda _msg: None), results_path, resolve(None))
    return session.finish(session.protocol(wanted, n), n)


# ---------------------------------------------------------------------------------------------
# What a version bump cost


@dataclass(frozen=True)
class BumpRow:
    """One Dockerfile's version-bump runs: median and range of the rebuild, downloads, install re-runs."""

    name: str
    median_s: float
    min_s: float
    max_s: float
    runs: int
    #: Packages downloaded, per run (None: the log does not say).
    downloads: tuple[int | None, ...]
    #: Runs in which a dependency install (`poetry install`/`uv sync`, not `--only-root`) re-ran.
    install_reran: int
    #: Dockerfile steps that ran / came from the cache, as ranges over the runs ("3", "2-3").
    ran: str
    cached: str

    @property
    def rebuilds_dependencies(self) -> bool:
        """True when every run re-ran the dependency install."""
        return self.install_reran == self.runs

    @property
    def max_downloads(self) -> int | None:
        known = [d for d in self.downloads if d is not None]
        return max(known) if len(known) == len(self.downloads) and known else None

    def cells(self) -> list[str]:
        spread = f" ({self.min_s:.1f}–{self.max_s:.1f})" if self.runs > 1 else ""
        dl = self.max_downloads
        return [self.name, f"{self.median_s:.1f} s{spread}", self.ran, self.cached,
                f"{self.install_reran} of {self.runs}", "?" if dl is None else _range(self.downloads)]


def _range(values: Sequence[int | None]) -> str:

    return fmt_range(values)


def bump_row(name: str, runs: Sequence[Run]) -> BumpRow:
    """The row of `runs` (version-bump runs that still hold their builds)."""
    if not runs:
        raise InputError(f"{name}: no version-bump runs")
    if any(r.build is None for r in runs):
        raise InputError(f"{name}: a run read back from the results file has no build to read the install from")
    walls = [r.wall_s for r in runs]
    return BumpRow(
        name=name, median_s=float(statistics.median(walls)), min_s=min(walls), max_s=max(walls), runs=len(runs),
        downloads=tuple(r.downloads for r in runs),
        install_reran=sum(dependency_install_reran(r.build) for r in runs if r.build is not None),
        ran=fmt_range(r.ran_steps for r in runs), cached=fmt_range(r.cached_steps for r in runs),
    )


def bump_rows(measurements: Sequence[StepMeasurement]) -> list[BumpRow]:
    """One BumpRow per measurement (its version-bump scenario)."""
    rows = []
    for m in measurements:
        stats = m.scenarios.get(SCENARIO)
        if stats is None:
            raise InputError(f"{m.step} was measured without the {SCENARIO} scenario")
        rows.append(bump_row(m.step, stats.runs))
    return rows


BUMP_HEAD = ("Dockerfile", "version bump", "ran", "cached", "dependency install re-ran", "downloads")


def format_bump_table(rows: Sequence[BumpRow]) -> str:
    """A text table of bump rows, with what each column means under it."""
    lines = _aligned(BUMP_HEAD, [r.cells() for r in rows])
    legend = ("version bump: rebuild time after only the project's version changed, median (fastest–slowest).\n"
              "dependency install re-ran: runs in which `poetry install`/`uv sync` (not `--only-root`) ran again.\n"
              "downloads: packages the install fetched (0 when no install ran, or when a cache mount kept them all;\n"
              "?: the install's log does not say, as step 4's, which runs Poetry without -vvv).")
    return "\n".join([*lines, "", legend])


# ---------------------------------------------------------------------------------------------
# What the locks record of the version


@dataclass(frozen=True)
class LockCheck:
    """One lock file's verdict after a version bump: the command, whether it passed, what it printed."""

    tool: str
    command: str
    ok: bool
    output: str
    #: The lock file's text before and after relocking with the bumped version (equal: it records no version).
    changed_by_relock: bool | None = None


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    """Run `cmd` in `cwd` with exactly `env`; its exit code and its output (stdout, then stderr)."""
    done = process.run(cmd, cwd=cwd, env=env, inherit_env=False, timeout=timeout, check=False)
    return done.returncode, done.output.strip()


def lock_after_bump(name: str = "version-locks") -> tuple[str, list[LockCheck]]:
    """Bump a scratch copy's version and ask each tool whether its lock is still fresh.

    Poetry: `poetry check --lock` on the bumped copy, then whether `poetry lock` changes poetry.lock.
    uv: a uv.lock derived before the bump, then `uv lock --check` after it (what `uv sync --locked`
    checks in step 8's builder). Returns ("old -> new", [Poetry's check, uv's check]).
    """
    app = scratch_copy(name)
    lock(app.path)  # uv.lock for the current version, as step 8's context has it
    uv_before = (app.path / "uv.lock").read_text()
    poetry_before = (app.path / "poetry.lock").read_text()
    pyproject = app.path / "pyproject.toml"

    _, old = with_version(pyproject.read_text(), "0")
    new = new_version(old)
    pyproject.write_text(with_version(pyproject.read_text(), new)[0])

    env = {**os.environ, **poetry_env(), "POETRY_VIRTUALENVS_CREATE": "false", "POETRY_NO_INTERACTION": "1"}
    poetry = str(find_poetry())
    code, out = _run([poetry, "check", "--lock"], app.path, env)
    relock_code, relock_out = _run([poetry, "lock"], app.path, env, 600)
    if relock_code != 0:
        raise InputError(f"`poetry lock` failed on the bumped copy: {relock_out[-500:]}")
    poetry_check = LockCheck("Poetry", "poetry check --lock", code == 0, out,
                             (app.path / "poetry.lock").read_text() != poetry_before)

    uv_env_ = {**{k: v for k, v in os.environ.items() if not k.startswith("UV_")}, **uv_env(), "NO_COLOR": "1"}
    code, out = _run([str(find_uv()), "lock", "--check"], app.path, uv_env_)
    lock(app.path)
    uv_check = LockCheck("uv", "uv lock --check", code == 0, out, (app.path / "uv.lock").read_text() != uv_before)
    return f"{old} -> {new}", [poetry_check, uv_check]


# ---------------------------------------------------------------------------------------------
# What the image says its version is


def installed_version(ref: str) -> str:
    """The project's version as the image's `python` reads it (`importlib.metadata`), or NOT_INSTALLED."""
    res = run_in_image(ref, ["python", "-c", VERSION_CODE])
    lines = res.output.strip().splitlines()
    if res.exit_code != 0 or not lines:
        raise InputError(f"could not read the version in {ref}: {res.output.strip()[-300:]}")
    return lines[-1].strip()


def declared_version(app_path: Path) -> str:
    """The version the scratch copy's pyproject.toml declares now."""
    return with_version((app_path / "pyproject.toml").read_text(), "0")[1]


# ---------------------------------------------------------------------------------------------
# The venv that does not travel


@dataclass
class TravelResult:
    """The runtime whose base has no interpreter where the venv points: what it does, and its check."""

    ref: str
    #: Where the venv's `python` points (read in the builder's image).
    link: str
    #: The container's exit code, run as the image says (its ENTRYPOINT); None: the engine could not start it.
    exit_code: int | None
    #: What the engine (or the process) said.
    output: str
    #: The build of the stage with the smoke RUN: it failed (True) and its error output.
    check_failed: bool
    check_error: str
    check_exit_code: int | None


def _run_entrypoint(ref: str, timeout_s: float = 60) -> tuple[int | None, str]:
    """Start `ref` as it is (its own ENTRYPOINT), wait, return (exit code, what the engine or the process said).

    An exec that fails inside the container's init ends the container with an exit code and the
    message in its logs (runc prints it); an engine that refuses to start it raises: its message is kept.
    """
    with enginelock.exclusive(enginelock.describe("running the venv-elsewhere runtime")), \
            throwaway(ref, network_disabled=True) as container:
        try:
            container.start()
        except docker.errors.APIError as exc:
            return None, str(exc.explanation or exc)
        status = container.wait(timeout=timeout_s)
        logs = container.logs(stdout=True, stderr=True).decode(errors="replace").strip()
        container.reload()
        err = str(container.attrs.get("State", {}).get("Error") or "")
        return int(status.get("StatusCode", -1)), (logs or err)


def venv_travel(display: BuildDisplay | str | None = None) -> TravelResult:
    """Build the two runtime stages of 10-venv-elsewhere.Dockerfile and run the unchecked one.

    The unchecked runtime builds (nothing in it runs the venv); starting it shows the error a learner
    meets in production. The checked stage adds `RUN ["/app/.venv/bin/python", "-c", "import annapurna"]`:
    its build fails, which is the point.
    """
    app = scratch_copy("venv-elsewhere")
    prefix = f"{config.IMAGE_REPO_PREFIX}/10-venv-elsewhere"
    disk.ensure_disk_space()  # build() leaves the free-disk check to its callers
    builder = build(TRAVEL_DOCKERFILE, app.path, f"{prefix}:builder", target="builder", display=display)
    link = run_in_image(builder.tag, ["readlink", "-f", "/app/.venv/bin/python"]).output.strip()
    runtime = build(TRAVEL_DOCKERFILE, app.path, f"{prefix}:runtime", target=TRAVEL_UNCHECKED, display=display)
    code, output = _run_entrypoint(runtime.tag)
    try:
        build(TRAVEL_DOCKERFILE, app.path, f"{prefix}:checked", target=TRAVEL_CHECKED, display=display)
    except BuildError as exc:
        return TravelResult(runtime.tag, link, code, output, True, _failure_lines(exc), exc.step_exit_code)
    return TravelResult(runtime.tag, link, code, output, False, "", None)


def _failure_lines(exc: BuildError, limit: int = 6) -> str:
    """The failing step's own lines from a build error (its last `limit` lines)."""
    text = str(getattr(exc, "log", "") or exc)
    lines = [line for line in text.splitlines() if line.strip()]
    wanted = [line for line in lines if "import annapurna" in line or "no such file" in line.lower()
              or "did not complete successfully" in line]
    return "\n".join((wanted or lines)[-limit:])


def show_fix_diff(key: str, against: str = "06") -> None:
    """Display the instructions an extra of notebook 10 changes over a step's Dockerfile (default: step 6's)."""
    old, new = dockerfile(against), extra_dockerfile(key)
    show_code(instruction_diff(old.read_text(), new.read_text(), old.name, new.name,
                               whole=f"dockerfiles/extras/{new.name}"), "diff")


def lock_lines(check: LockCheck) -> str:
    """What a lock check printed that a learner needs: its error and hint lines (uv also names the host's Python)."""
    plain = _ANSI.sub("", check.output)
    lines = [line for line in plain.splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("Using CPython", "Resolved "))]
    return "\n".join(kept)


# ---------------------------------------------------------------------------------------------
# Poetry 2: what older Dockerfiles trip over, as the pinned Poetry says it


@dataclass(frozen=True)
class PoetryFact:
    """One command run with the pinned Poetry: its exit status and the lines that answer the question."""

    what: str
    command: str
    returncode: int
    lines: tuple[str, ...]


#: What a dry-run install prints when it would install the project itself.
ROOT_INSTALL_LINE = "Installing the current project"


def kept_lines(output: str, wanted: Sequence[str] = ()) -> tuple[str, ...]:
    """The non-empty lines of `output` (without colour codes); with `wanted`, only lines holding one of them."""
    lines = [line.rstrip() for line in _ANSI.sub("", output).splitlines() if line.strip()]
    return tuple(line for line in lines if not wanted or any(w in line for w in wanted))


def poetry2_facts(name: str = "poetry2-facts") -> list[PoetryFact]:
    """Run the pinned Poetry on a scratch copy: `export`, `install --help` (--no-directory and friends), and a
    dry-run install with and without `package-mode = false`. Builds nothing; the dry runs create an empty venv
    under the lab's cache folder (never inside the copy, so a build context stays clean)."""
    app = scratch_copy(name)
    envs = config.LAB_HOME / "cache" / f"{name}-venvs"
    env = {**os.environ, **poetry_env(), "POETRY_VIRTUALENVS_PATH": str(envs), "POETRY_NO_INTERACTION": "1",
           "POETRY_VIRTUALENVS_IN_PROJECT": "false", "NO_COLOR": "1"}
    poetry = str(find_poetry())

    def fact(what: str, args: list[str], wanted: Sequence[str] = ()) -> PoetryFact:
        code, out = _run([poetry, *args], app.path, env)
        return PoetryFact(what, "poetry " + " ".join(args), code, kept_lines(out, wanted))

    dry = ["install", "--dry-run", "--without", "dev"]
    facts = [
        fact("export without its plugin", ["export", "-f", "requirements.txt"]),
        fact("install's options for Docker layers", ["install", "--help"], ("--no-root", "--no-directory", "--only-root")),
        fact("a dry-run install, package mode", dry, ("Package operations", ROOT_INSTALL_LINE)),
    ]
    pyproject = app.path / "pyproject.toml"
    text = pyproject.read_text()
    if "[tool.poetry]\n" not in text:
        raise InputError("the app's pyproject.toml has no [tool.poetry] table to set package-mode in")
    pyproject.write_text(text.replace("[tool.poetry]\n", "[tool.poetry]\npackage-mode = false\n", 1))
    facts.append(fact("a dry-run install, package-mode = false", dry, ("Package operations", ROOT_INSTALL_LINE)))
    return facts

