"""Is the cache in the state a scenario says it is? `verify` checks every run the protocol makes.

A cold build must take nothing from the layer cache, no package from Poetry's cache, and no cache mount
the lab did not create; a change (code, dependency, version) must reach the build (its COPY, or a RUN
that bind-mounts pyproject.toml, re-runs) while the steps before it come from the cache. The
predicates read each build's steps through basecamp.dockerparse; `dependency_install_reran` tells
whether a dependency install ran again (notebook 10 and basecamp.versionbump ask it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from basecamp.dockerparse import parse
from basecamp.errors import InputError
from basecamp.runs import SCENARIOS

if TYPE_CHECKING:
    from basecamp.build import BuildResult
    from basecamp.progress import Step
    from basecamp.runs import Run

#: The folders of the app's code in the build context (what a code change edits).
CODE_PATHS = ("annapurna",)
#: The files a dependency change edits.
DEPENDENCY_FILES = ("pyproject.toml", "poetry.lock", "uv.lock")


def copy_sources(step: Step) -> list[str] | None:
    """The context paths a COPY/ADD step copies (normalised: no "./", no trailing "/"; "." for all).

    None for any other step, and for `COPY --from=...` (it copies from a stage, not the context).
    """
    if step.keyword not in ("COPY", "ADD"):
        return None
    parsed = parse(step.instruction).instructions
    return parsed[0].sources if parsed else None


def _copies(build: BuildResult, wanted: Callable[[str], bool]) -> list[Step]:
    found = []
    for s in build.steps:
        sources = copy_sources(s)
        if sources and any(src == "." or wanted(src) for src in sources):
            found.append(s)
    return found


def code_copies(build: BuildResult, code_paths: Sequence[str] = CODE_PATHS) -> list[Step]:
    """The steps that copy the app's code into the image (`COPY . .`, `COPY annapurna ./annapurna`)."""
    return _copies(build, lambda src: any(src == p or src.startswith(p + "/") for p in code_paths))


def dependency_copies(build: BuildResult) -> list[Step]:
    """The steps that copy pyproject.toml / poetry.lock into the image (`COPY . .` counts)."""
    return _copies(build, lambda src: src.rsplit("/", 1)[-1] in DEPENDENCY_FILES)


def dependency_binds(build: BuildResult) -> list[Step]:
    """The RUN steps that bind-mount pyproject.toml / poetry.lock / uv.lock from the build context
    (`RUN --mount=type=bind,source=pyproject.toml,...`; a bind from a stage, `from=`, does not count)."""
    found = []
    for s in build.steps:
        if s.keyword != "RUN":
            continue
        parsed = parse(s.instruction).instructions
        for mount in parsed[0].mounts if parsed else []:
            opts = dict(mount.options)
            source = (opts.get("source") or opts.get("src") or mount.target).strip("/")
            if mount.type == "bind" and "from" not in opts and source.rsplit("/", 1)[-1] in DEPENDENCY_FILES:
                found.append(s)
                break
    return found


def install_steps(build: BuildResult) -> list[Step]:
    """The RUN steps that install dependencies (`poetry install`, `uv sync`)."""
    return [s for s in build.steps if s.keyword == "RUN"
            and ("poetry install" in s.instruction or "uv sync" in s.instruction)]


def dependency_install_reran(build: BuildResult) -> bool:
    """True when a dependency install (`poetry install`/`uv sync`) that installs more than the project ran.

    `poetry install --only-root` and `uv sync --no-deps`-style steps install the project alone
    (no dependency), so they do not count.
    """
    own_only = ("--only-root", "--no-deps")
    return any(s.status == "done" and not any(flag in s.instruction for flag in own_only)
               for s in install_steps(build))


def _not_warm(build: BuildResult, copies: list[Step]) -> list[Step]:
    """Steps that should have come from the cache but ran: those before the first changed copy of their stage."""
    first: dict[str | None, int] = {}
    for s in copies:
        if s.index is not None:
            first[s.stage] = min(first.get(s.stage, s.index), s.index)
    return [s for s in build.steps if not s.is_from and s.stage in first and s.index is not None
            and s.index < first[s.stage] and s.status != "cached"]


def _names(steps: Iterable[Step], limit: int = 4) -> str:
    names = [s.name for s in steps]
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return "; ".join(names[:limit]) + more



def _cold_problems(run: Run) -> list[str]:
    """cold: no step from the layer cache, no package from Poetry's cache, no cache mount of someone else's."""
    build = run.build
    problems: list[str] = []
    if build is not None and build.cached_steps:
        problems.append(f"the cold build took {len(build.cached_steps)} step(s) from the layer cache: "
                        f"{_names(build.cached_steps)} (BuildKit shares steps between builds that run at "
                        "the same time, even with --no-cache: measure while no other build runs)")
    if run.from_cache:
        problems.append(f"the cold build installed {run.from_cache} package(s) from Poetry's cache: "
                        "a cache mount was not empty")
    if run.foreign_cache_mounts:
        problems.append(
            "the cold build used BuildKit cache mount(s) the lab did not create, and the lab never prunes "
            f"what it did not create: {'; '.join(run.foreign_cache_mounts)}. If they are yours to remove: "
            "`docker builder prune --filter id=<ID>`; then measure again")
    return problems


def _code_change(build: BuildResult, code_paths: Sequence[str], problems: list[str]) -> list[Step]:
    copies = code_copies(build, code_paths)
    if not copies:
        problems.append("no COPY of the app's code found: a code change cannot reach this build")
    elif not any(s.status == "done" for s in copies):
        problems.append(f"the COPY of the code did not re-run ({_names(copies)}): the edit did not reach the build")
    return copies


def _dependency_change(build: BuildResult, _code_paths: Sequence[str], problems: list[str]) -> list[Step]:
    copies = dependency_copies(build)
    installs = install_steps(build)
    if not copies:
        problems.append("no COPY of pyproject.toml / poetry.lock found: a dependency change cannot reach this build")
    elif not any(s.status == "done" for s in copies):
        problems.append(f"the COPY of pyproject.toml / poetry.lock did not re-run ({_names(copies)})")
    if installs and not any(s.status == "done" for s in installs):
        tool = "uv sync" if any("uv sync" in s.instruction for s in installs) else "poetry install"
        problems.append(f"`{tool}` did not re-run after a dependency change ({_names(installs)})")
    return copies


def _version_bump(build: BuildResult, _code_paths: Sequence[str], problems: list[str]) -> list[Step]:
    copies = dependency_copies(build) + dependency_binds(build)
    if not copies:
        problems.append("no COPY (or bind mount) of pyproject.toml found: a version bump cannot reach this build")
    elif not any(s.status == "done" for s in copies):
        problems.append(f"no step reading pyproject.toml re-ran ({_names(copies)}): the version bump did not "
                        "reach the build")
    return copies


#: The change scenarios' checks: each adds its problems and returns the steps that carry the change.
_CHANGES: dict[str, Callable[[BuildResult, Sequence[str], list[str]], list[Step]]] = {
    "code-change": _code_change, "dependency-change": _dependency_change, "version-bump": _version_bump,
}


def verify(run: Run, code_paths: Sequence[str] = CODE_PATHS) -> list[str]:
    """What makes this run's measurement invalid (an empty list: it is valid).

    - cold: no step may come from the layer cache, no package from Poetry's cache, no cache
      mount the lab did not create may be used;
    - code-change: a COPY of the code must exist and re-run, and the steps before it (in its
      stage) must come from the cache — the cache was warm;
    - dependency-change: the COPY of pyproject.toml / poetry.lock and `poetry install` must re-run,
      and the steps before that COPY must come from the cache.
    - version-bump: a step that reads pyproject.toml from the context (its COPY, or a RUN that
      bind-mounts it) must exist and re-run (the bump reached the build), and the steps before it
      must come from the cache. The install *may* re-run or come from the cache: which one it does
      is what the scenario measures (a Dockerfile that keeps it cached is the fix, not an error).
    """
    if run.scenario == "cold":
        return _cold_problems(run)
    if run.build is None:
        return []
    check = _CHANGES.get(run.scenario)
    if check is None:
        raise InputError(f"unknown scenario {run.scenario!r}: use one of {', '.join(SCENARIOS)}")
    problems: list[str] = []
    copies = check(run.build, code_paths, problems)
    cold_steps = _not_warm(run.build, copies)
    if cold_steps:
        problems.append(f"the cache was not warm: {_names(cold_steps)} ran, but came before the change")
    return problems
