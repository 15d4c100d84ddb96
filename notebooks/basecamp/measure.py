"""The measurement protocol: how long a step takes to build, cold and after a change, checked.

Every notebook and the benchmark (`python -m basecamp bench`) measure a step with `measure_step`,
so every number in the series comes from the same protocol:

- **cold**: no layer cache for this step (`--no-cache`) and empty cache mounts. The BuildKit
  cache-mount records the lab created for *this Dockerfile's* mounts are pruned first
  (`basecamp.buildcache`; another step's cache mounts stay as they are); `--no-cache` also
  makes BuildKit release the cache mounts the build uses (moby/buildkit#1092), so a cache mount
  of *yours* with the same id would go too: the measurement refuses to start instead
  (`buildcache.cache_mounts_at_risk`). The base image must already be in the engine: pulling it
  is never part of a timing. BuildKit shares steps between builds running at the same time,
  even with `--no-cache`; verification catches that (the cold run shows cached steps).
- **code-change**: one new line in the app's code (`Scratch.edit_code`), then a rebuild with
  the cache.
- **dependency-change**: `Scratch.change_dependency`: the first run adds a small package
  (scratch.DEPENDENCY) to [project].dependencies and relocks; every run writes a fresh marker
  comment in pyproject.toml. Then a rebuild with the cache. Steps share identical instructions,
  so only a change no earlier build has seen shows what a dependency change costs.
- **version-bump**: `Scratch.bump_version`: only the project's version in pyproject.toml changes
  (to a version no earlier build has seen; a uv step's uv.lock is derived again, as it records
  the project's version). Then a rebuild with the cache. The most common release-day change: it
  shows which steps reinstall every dependency although no dependency changed. Steps 01-03 do
  not have it (`PROTOCOL`): they copy the code before the install, so every change rebuilds there.

Before the code-change and dependency-change runs the step is built once from the current
scratch state (a warm-up, not measured), so each measured build starts from a warm cache.
Each scenario runs `repeats` times (default: $ANNAPURNA_REPEATS, else 2); the median and the
spread (min-max) are reported. Cache state is verified, not assumed: `verify` checks every run
(a cold build that took any step from the cache is invalid, a code change must re-run the COPY of
the code, ...) and `measure_step` raises LabError instead of reporting an invalid number.

Every run is appended to the results file (basecamp.results) with the measurement's id, plus one
"image" record with the sizes of the image the step makes; `measured(step)` and `latest_rows()`
read them back, so a summary can compare steps without rebuilding anything.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basecamp import config
from basecamp.errors import InputError, LabError
from basecamp.units import fmt_bytes

if TYPE_CHECKING:
    from basecamp.build import BuildResult
    from basecamp.buildcache import Tracking
    from basecamp.display import BuildDisplay
    from basecamp.images import ImageInfo
    from basecamp.progress import Step
    from basecamp.project import Project
    from basecamp.results import Record
    from basecamp.scratch import Scratch

SCENARIOS = ("cold", "code-change", "dependency-change", "version-bump")
#: The results-file scenario of the record that holds a measurement's image sizes.
IMAGE_SCENARIO = "image"
#: Written last by `measure_step`: a measurement without it was interrupted or failed part-way.
DONE_SCENARIO = "done"
#: The record of a smoke test run on the measured image (basecamp.yours): `ok`, and its line in `note`.
SMOKE_SCENARIO = "smoke"
#: Steps whose whole protocol is smaller than SCENARIOS. The anti-pattern only has a size to show.
#: Steps 01-03 copy the whole project before the install, so a version bump rebuilds everything there
#: just as a code change does: measuring it would repeat their code-change column.
_BEFORE_SPLIT = ("cold", "code-change", "dependency-change")
PROTOCOL: dict[str, tuple[str, ...]] = {
    "01-naive": _BEFORE_SPLIT, "02-warming-up": _BEFORE_SPLIT, "03-poetry-cache": _BEFORE_SPLIT,
    "03b-cache-deleted-later": ("cold",),
}


def protocol(step: str) -> tuple[str, ...]:
    """The scenarios a complete measurement of `step` has (what the summary needs of it)."""
    return PROTOCOL.get(step, SCENARIOS)


def scenarios_for(step: str, wanted: Sequence[str] | None = None) -> list[str]:
    """The scenarios asked for (default: all of the step's protocol), within the step's protocol."""
    return [s for s in (wanted or protocol(step)) if s in protocol(step)] or list(protocol(step))
REPEATS_ENV = "ANNAPURNA_REPEATS"
DEFAULT_REPEATS = 2
#: The folders of the app's code in the build context (what a code change edits).
CODE_PATHS = ("annapurna",)
#: The files a dependency change edits.
DEPENDENCY_FILES = ("pyproject.toml", "poetry.lock", "uv.lock")
#: Stage name that multi-stage steps build (`--target runtime`); the image measured is that stage's.
RUNTIME_TARGET = "runtime"

Log = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# Runs and their statistics


@dataclass
class Run:
    """One measured build of one scenario."""

    scenario: str
    wall_s: float
    cached_steps: int
    ran_steps: int
    #: Packages Poetry downloaded (basecamp.installer), None when unknown.
    downloads: int | None
    image_id: str
    #: The build itself; None for a run read back from the results file.
    build: BuildResult | None
    #: 1 for the first run of its scenario, 2 for the next, ...
    index: int = 1
    size_bytes: int | None = None
    #: Packages Poetry installed / took from its cache (basecamp.installer), None when unknown.
    installed: int | None = None
    from_cache: int | None = None
    #: Cache-mount records this build used that the lab did not create ("<id>: <description>").
    foreign_cache_mounts: list[str] = field(default_factory=list)

    def line(self) -> str:
        """`cold 1: 41.2 s, 0 cached, 4 ran, 27 downloads`."""
        dl = f", {self.downloads} downloads" if self.downloads is not None else ""
        return f"{self.scenario} {self.index}: {self.wall_s:.1f} s, {self.cached_steps} cached, {self.ran_steps} ran{dl}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "index": self.index, "wall_s": round(self.wall_s, 3),
            "cached_steps": self.cached_steps, "ran_steps": self.ran_steps, "downloads": self.downloads,
            "installed": self.installed, "from_cache": self.from_cache, "image_id": self.image_id,
            "size_bytes": self.size_bytes,
        }


def fmt_range(values: Iterable[int | None]) -> str:
    """"3" when every value is 3, "2-3" when they differ, "?" when any is unknown, "" for none."""
    vals = list(values)
    if not vals:
        return ""
    if any(v is None for v in vals):
        return "?"
    lo, hi = min(vals), max(vals)  # type: ignore[type-var]
    return str(lo) if lo == hi else f"{lo}-{hi}"


@dataclass
class ScenarioStats:
    """The runs of one scenario and their median and spread."""

    scenario: str
    runs: list[Run]

    def _walls(self) -> list[float]:
        if not self.runs:
            raise InputError(f"scenario {self.scenario!r} has no runs")
        return [r.wall_s for r in self.runs]

    @property
    def median_s(self) -> float:
        return float(statistics.median(self._walls()))

    @property
    def min_s(self) -> float:
        return min(self._walls())

    @property
    def max_s(self) -> float:
        return max(self._walls())

    @property
    def spread_s(self) -> float:
        """max - min: how far apart the fastest and the slowest run were."""
        return self.max_s - self.min_s

    @property
    def cached(self) -> str:
        """Cached step counts over the runs, as a range ("3" or "2-3")."""
        return fmt_range(r.cached_steps for r in self.runs)

    @property
    def ran(self) -> str:
        return fmt_range(r.ran_steps for r in self.runs)

    @property
    def downloads(self) -> str:
        return fmt_range(r.downloads for r in self.runs)

    def timing(self) -> str:
        """"41.2 s (40.1-43.0)": the median, then min-max when there is more than one run."""
        if len(self.runs) == 1:
            return f"{self.median_s:.1f} s"
        return f"{self.median_s:.1f} s ({self.min_s:.1f}–{self.max_s:.1f})"

    def summary(self) -> str:
        dl = f", {self.downloads} downloads" if self.downloads not in ("", "?") else ""
        return (f"{self.scenario}: {self.timing()} over {len(self.runs)} run(s); "
                f"{self.cached} cached, {self.ran} ran{dl}")


def _smoke_cell(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "failed")


def _key(scenario: str) -> str:
    return scenario.replace("-", "_")


@dataclass
class StepMeasurement:
    """A step measured with the protocol: its image, and each scenario's runs."""

    step: str
    image: ImageInfo
    #: The base the measured image starts from: "python:3.11-slim-bookworm (stand-in)" or "(official)".
    base: str
    builder: str
    scenarios: dict[str, ScenarioStats]
    target: str | None = None
    repeats: int = 0
    #: The id every record of this measurement carries in the results file.
    measurement: str = ""
    #: The project measured (basecamp.project): "annapurna" for the repo's own app.
    project: str = "annapurna"
    #: The learner's own Dockerfile measured (basecamp.yours); "" for a step.
    dockerfile: str = ""
    #: Its smoke test after the measurement passed (True), failed (False), or was not run (None).
    smoke_ok: bool | None = None

    @property
    def label(self) -> str:
        """What the row is: the step's name, or "your Dockerfile (<file>)"."""
        return f"your Dockerfile ({Path(self.dockerfile).name})" if self.dockerfile else self.step

    def row(self) -> dict[str, Any]:
        """One flat dict (numbers, and a few formatted cells) for tables and CSV.

        Keys: step, label (the step, or "your Dockerfile (<file>)"), smoke ("ok", "failed", "" when not
        run), dockerfile ("" for a step), project, base, builder, target, repeats, size_bytes, size, compressed_bytes, gzipped,
        then for each scenario (underscored: cold, code_change, dependency_change, version_bump): <s>_median_s,
        <s>_min_s, <s>_max_s, <s>_spread_s, <s>_runs, <s>_cached, <s>_ran, <s>_downloads and <s>
        (the formatted timing). Scenarios not measured have None / "" there, so rows line up.
        """
        row: dict[str, Any] = {
            "step": self.step, "label": self.label, "smoke": _smoke_cell(self.smoke_ok),
            "dockerfile": self.dockerfile, "project": self.project, "base": self.base, "builder": self.builder, "target": self.target or "",
            "repeats": self.repeats, "size_bytes": self.image.size_bytes, "size": fmt_bytes(self.image.size_bytes),
            "compressed_bytes": self.image.compressed_bytes, "gzipped": fmt_bytes(self.image.compressed_bytes),
        }
        for scenario in SCENARIOS:
            k = _key(scenario)
            stats = self.scenarios.get(scenario)
            if stats is None or not stats.runs:
                row.update({f"{k}_median_s": None, f"{k}_min_s": None, f"{k}_max_s": None, f"{k}_spread_s": None,
                            f"{k}_runs": 0, f"{k}_cached": "", f"{k}_ran": "", f"{k}_downloads": "", k: ""})
                continue
            row.update({
                f"{k}_median_s": round(stats.median_s, 3), f"{k}_min_s": round(stats.min_s, 3),
                f"{k}_max_s": round(stats.max_s, 3), f"{k}_spread_s": round(stats.spread_s, 3),
                f"{k}_runs": len(stats.runs), f"{k}_cached": stats.cached, f"{k}_ran": stats.ran,
                f"{k}_downloads": stats.downloads, k: stats.timing(),
            })
        return row

    def summary(self) -> str:
        """A few lines: the image, then one line per scenario."""
        lines = [f"{self.step}: {self.image.summary()} — base {self.base}"]
        lines += [f"  {stats.summary()}" for stats in self.scenarios.values()]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: the row, the measurement id, the image, and every run."""
        return {
            **self.row(), "measurement": self.measurement,
            "image": {"ref": self.image.ref, "id": self.image.id, "size_bytes": self.image.size_bytes,
                      "compressed_bytes": self.image.compressed_bytes, "base_ref": self.image.base_ref},
            "runs": {s: [r.as_dict() for r in stats.runs] for s, stats in self.scenarios.items()},
        }


# ---------------------------------------------------------------------------------------------
# Verification: is the cache in the state the scenario says it is?


def copy_sources(step: Step) -> list[str] | None:
    """The context paths a COPY/ADD step copies (normalised: no "./", no trailing "/"; "." for all).

    None for any other step, and for `COPY --from=...` (it copies from a stage, not the context).
    """
    from basecamp.dockerparse import parse

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
    from basecamp.dockerparse import parse

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
    build = run.build
    problems: list[str] = []
    if run.scenario == "cold":
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
    if build is None:
        return problems
    if run.scenario == "code-change":
        copies = code_copies(build, code_paths)
        if not copies:
            problems.append("no COPY of the app's code found: a code change cannot reach this build")
        elif not any(s.status == "done" for s in copies):
            problems.append(f"the COPY of the code did not re-run ({_names(copies)}): the edit did not reach the build")
    elif run.scenario == "dependency-change":
        copies = dependency_copies(build)
        installs = [s for s in build.steps if s.keyword == "RUN"
                    and ("poetry install" in s.instruction or "uv sync" in s.instruction)]
        if not copies:
            problems.append("no COPY of pyproject.toml / poetry.lock found: a dependency change cannot reach this build")
        elif not any(s.status == "done" for s in copies):
            problems.append(f"the COPY of pyproject.toml / poetry.lock did not re-run ({_names(copies)})")
        if installs and not any(s.status == "done" for s in installs):
            tool = "uv sync" if any("uv sync" in s.instruction for s in installs) else "poetry install"
            problems.append(f"`{tool}` did not re-run after a dependency change ({_names(installs)})")
    elif run.scenario == "version-bump":
        copies = dependency_copies(build) + dependency_binds(build)
        if not copies:
            problems.append("no COPY (or bind mount) of pyproject.toml found: a version bump cannot reach this build")
        elif not any(s.status == "done" for s in copies):
            problems.append(f"no step reading pyproject.toml re-ran ({_names(copies)}): the version bump did not "
                            "reach the build")
    else:
        raise InputError(f"unknown scenario {run.scenario!r}: use one of {', '.join(SCENARIOS)}")
    cold_steps = _not_warm(build, copies)
    if cold_steps:
        problems.append(f"the cache was not warm: {_names(cold_steps)} ran, but came before the change")
    return problems


# ---------------------------------------------------------------------------------------------
# Measuring


def default_repeats() -> int:
    """$ANNAPURNA_REPEATS, else DEFAULT_REPEATS."""
    raw = os.environ.get(REPEATS_ENV, "").strip()
    if not raw:
        return DEFAULT_REPEATS
    return _check_repeats(raw, f"${REPEATS_ENV}")


def _check_repeats(value: Any, source: str = "repeats") -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise InputError(f"{source}={value!r}: use a whole number of runs, 1 or more")
    return int(text)


def check_scenarios(scenarios: Sequence[str] | str) -> list[str]:
    """The scenarios, validated, in the protocol's order (cold first: changes edit the copy)."""
    wanted = [scenarios] if isinstance(scenarios, str) else list(scenarios)
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown or not wanted:
        raise InputError(f"scenarios {unknown or wanted!r}: use some of {', '.join(SCENARIOS)}")
    return [s for s in SCENARIOS if s in wanted]


def default_target(step: str) -> str | None:
    """"runtime" when the step's Dockerfile has a stage of that name (multi-stage steps), else None."""
    from basecamp.steps import dockerfile, stages

    names = {st.name.lower() for st in stages(dockerfile(step)) if st.name}
    return RUNTIME_TARGET if RUNTIME_TARGET in names else None


def target_base(step: str, target: str | None = None) -> str:
    """The image the built stage (`target`, else the last) starts from (see steps.base_of)."""
    from basecamp.steps import base_of

    return base_of(step, target)


def external_bases(step: str) -> list[str]:
    """The images the step's stages start from that are not stages of the same Dockerfile."""
    from basecamp.steps import dockerfile

    return external_bases_in(dockerfile(step))


def external_bases_in(path: Path) -> list[str]:
    """`external_bases` of any Dockerfile file."""
    from basecamp.steps import stages

    named: set[str] = set()
    out: list[str] = []
    for st in stages(path):
        if st.base.lower() not in named and st.base not in out and st.base.lower() != "scratch":
            out.append(st.base)
        if st.name:
            named.add(st.name.lower())
    return out


def describe_base_short(client: Any, base: str) -> str:
    """"python:3.11-slim-bookworm (stand-in)" or "... (official)"."""
    labels = client.images.get(base).labels or {}
    return f"{base} ({'stand-in' if labels.get(config.STANDIN_LABEL) == 'true' else 'official'})"


def _install_counts(build: BuildResult) -> tuple[int | None, int | None, int | None]:
    """(installed, downloaded, from_cache) from basecamp.installer when it is there, else unknown."""
    try:
        from basecamp import installer  # optional: counts come from Poetry's output
    except ImportError:
        return None, None, None
    try:
        report = installer.install_report(build)
    except LabError:
        return None, None, None

    def count(items: Any) -> int | None:
        return None if items is None else len(items)

    return count(report.installed), count(report.downloaded), count(report.from_cache)


def _drop_superseded(client: Any, old_id: str | None, new_id: str) -> None:
    """Remove the image a measurement tag pointed to before, when nothing else names it (lab images only)."""
    import docker.errors

    if not old_id or old_id == new_id:
        return
    try:
        image = client.images.get(old_id)
        if image.tags or (image.labels or {}).get(config.LAB_LABEL) != config.LAB_LABEL_VALUE:
            return
        client.images.remove(old_id)
    except docker.errors.APIError:
        pass  # in use by a container, or already gone: `./lab clean` removes it later


class _Session:
    """One measure_step call: builds the step from `app`, times, tracks and records each run."""

    def __init__(self, name: str, dockerfile: Path, app: Scratch, target: str | None,
                 display: BuildDisplay | str | None, log: Log, results_path: Path | None, project: Project,
                 *, source: str = "", missing_base: str = "run `./lab prepare` first") -> None:
        from basecamp import engine
        from basecamp.steps import base_in

        self.client = engine.client()
        #: The row's key: a step name ("01-naive"), or a learner's Dockerfile's (basecamp.yours).
        self.step = name
        self.project = project
        self.dockerfile = dockerfile
        #: The learner's Dockerfile measured ("" for a step): written into every record.
        self.source = source
        self.app = app
        self.target = target
        self.display = display
        self.log = log
        self.results_path = results_path
        self.base = base_in(dockerfile, target)
        _require_bases(self.client, dockerfile, missing_base)
        from basecamp.uvlock import prepare_context

        prepare_context(app, self.dockerfile)  # a uv step's context needs a uv.lock
        self.base_desc = describe_base_short(self.client, self.base)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.measurement = f"{self.step}@{stamp}-{uuid.uuid4().hex[:6]}"
        self.image: ImageInfo | None = None
        self.image_build: BuildResult | None = None
        self.image_recorded = False
        self.builder = ""
        #: Commands this measurement has shown: each distinct command is shown once.
        self.commands: set[str] = set()

    def _display(self) -> BuildDisplay:
        """One build's display: ours report the measurement's line, a caller's own object is used as is."""
        from basecamp.display import make_display

        if self.display is None or isinstance(self.display, str):
            return make_display(self.display, report=False, commands=self.commands)
        return self.display

    def say(self, shown: BuildDisplay, result: BuildResult, line: str) -> None:
        """A build's one line: with its collapsed log on our displays, else through `log`."""
        line = f"{self.step}: {line}"
        if getattr(shown, "reports", False) and hasattr(shown, "report"):
            shown.report(result, line)
        else:
            self.log(line)

    def _image_id(self, tag: str) -> str | None:
        import docker.errors

        try:
            return str(self.client.images.get(tag).id)
        except docker.errors.ImageNotFound:
            return None

    def build(self, label: str, *, no_cache: bool) -> tuple[BuildResult, Tracking, BuildDisplay]:
        from basecamp import buildcache
        from basecamp.build import build
        from basecamp.steps import STEP_LABEL

        tag = _measure_ref(self.step, self.project, f"measure-{label}")
        old = self._image_id(tag)
        shown = self._display()
        with buildcache.track(note=tag, client=self.client, dockerfile_text=self.dockerfile.read_text()) as tracking:
            result = build(self.dockerfile, self.app.path, tag, target=self.target, no_cache=no_cache,
                           labels={STEP_LABEL: self.step, config.PROJECT_LABEL: self.project.name}, display=shown)
        _drop_superseded(self.client, old, result.image_id)
        self.builder = result.builder
        if self.image is None:  # the first build of the measurement is the image it reports
            from basecamp.images import inspect_image

            # tagged "<step>:measure" too, so later runs retagging "measure-<scenario>" never drop it
            kept = _measure_ref(self.step, self.project)
            old_kept = self._image_id(kept)
            repo, _, label = kept.rpartition(":")
            self.client.images.get(result.image_id).tag(repo, label)
            _drop_superseded(self.client, old_kept, result.image_id)
            self.image = inspect_image(kept, base=self.base)
            self.image_build = result
        return result, tracking, shown

    def warm_up(self) -> None:
        result, _, shown = self.build("warm", no_cache=False)
        self.say(shown, result, f"warm-up (not measured): {result.wall_s:.1f} s, "
                                f"{len(result.cached_steps)} cached, {len(result.ran_steps)} ran")

    def run(self, scenario: str, index: int) -> Run:
        result, tracking, shown = self.build(scenario, no_cache=scenario == "cold")
        installed, downloaded, from_cache = _install_counts(result)
        size = self.client.images.get(result.image_id).attrs.get("Size") if result.image_id else None
        run = Run(scenario=scenario, wall_s=result.wall_s, cached_steps=len(result.cached_steps),
                  ran_steps=len(result.ran_steps), downloads=downloaded, image_id=result.image_id,
                  build=result, index=index, size_bytes=int(size) if size is not None else None,
                  installed=installed, from_cache=from_cache,
                  foreign_cache_mounts=[f"{r.id}: {r.description}" for r in tracking.used_foreign])
        self.say(shown, result, run.line())
        problems = verify(run, self.project.packages)
        if problems:
            raise LabError(f"{self.step}, {scenario} run {index}: the measurement is invalid — "
                           + " | ".join(problems))
        if not self.image_recorded and self.image is not None and self.image_build is not None:
            # written with the first valid run, so every recorded measurement has runs
            self.record(IMAGE_SCENARIO, None, self.image_build, size=self.image.size_bytes,
                        compressed=self.image.compressed_bytes)
            self.image_recorded = True
        self.record(scenario, run, result, size=run.size_bytes)
        return run

    def record(self, scenario: str, run: Run | None, result: BuildResult, *, size: int | None,
               compressed: int | None = None, ok: bool | None = None, note: str = "") -> Record:
        from basecamp.results import Record, record

        rec = Record(
            step=self.step, scenario=scenario, wall_s=round(run.wall_s, 3) if run else None,
            size_bytes=size, compressed_bytes=compressed,
            cached_steps=run.cached_steps if run else None, ran_steps=run.ran_steps if run else None,
            builder=result.builder, base=self.base_desc, image_id=result.image_id,
            downloads=run.downloads if run else None, run=run.index if run else None,
            measurement=self.measurement, project=self.project.name, dockerfile=self.source, ok=ok, note=note,
            package_index=result.package_index,
        )
        return record(rec, self.results_path)

    def protocol(self, wanted: Sequence[str], n: int) -> dict[str, list[Run]]:
        """Every scenario's runs (module docstring): cold with empty cache mounts, changes after a warm-up.

        The engine is held for the whole protocol (basecamp.enginelock): another notebook's build
        waits, and this one waits for another's measurement, so neither times the other.
        """
        from basecamp import enginelock

        with enginelock.exclusive(enginelock.describe(f"measuring {self.step}")):
            return self._protocol(wanted, n)

    def _protocol(self, wanted: Sequence[str], n: int) -> dict[str, list[Run]]:
        from basecamp import buildcache

        runs: dict[str, list[Run]] = {}
        for scenario in wanted:
            runs[scenario] = []
            if scenario != "cold":
                self.warm_up()
            for i in range(1, n + 1):
                if scenario == "cold":
                    at_risk = buildcache.cache_mounts_at_risk(self.dockerfile.read_text(), self.client)
                    if at_risk:
                        raise LabError(
                            f"{self.step}: a cold build uses --no-cache, and BuildKit then discards every cache "
                            "mount with the same id (moby/buildkit#1092), including these, which the lab did not "
                            "create: " + "; ".join(f"{r.id} ({r.description})" for r in at_risk)
                            + ". The lab never removes what it did not create. If they are yours and not needed, "
                            "remove them (`docker builder prune --filter id=<ID>`); if a lab build made them outside "
                            "a measurement, declare them the lab's (`basecamp.buildcache.adopt([<ID>, ...])`); "
                            "or measure without the cold scenario")
                    # this Dockerfile's cache mounts only: another step's stay as an earlier notebook left them
                    text = self.dockerfile.read_text()
                    buildcache.prune_lab_cache_mounts(self.client, dockerfile_text=text)
                    left = buildcache.remaining_lab_cache_mounts(self.client, dockerfile_text=text)
                    if left:
                        raise LabError(f"{self.step}: could not empty the lab's cache mounts before a cold build "
                                       f"(in use by another build?): {', '.join(r.id for r in left)}")
                elif scenario == "code-change":
                    self.app.edit_code()
                elif scenario == "version-bump":
                    self.app.bump_version()
                else:
                    self.app.change_dependency()
                runs[scenario].append(self.run(scenario, i))
        return runs

    def finish(self, runs: dict[str, list[Run]], repeats: int, smoke_ok: bool | None = None) -> StepMeasurement:
        """Write the "done" record (the measurement is complete) and return it."""
        assert self.image is not None and self.image_build is not None
        self.record(DONE_SCENARIO, None, self.image_build, size=None)
        return StepMeasurement(
            step=self.step, image=self.image, base=self.base_desc, builder=self.builder,
            scenarios={s: ScenarioStats(s, r) for s, r in runs.items()}, target=self.target, repeats=repeats,
            measurement=self.measurement, project=self.project.name, dockerfile=self.source, smoke_ok=smoke_ok,
        )


def _require_bases(client: Any, dockerfile: Path, fix: str) -> None:
    import docker.errors

    for base in external_bases_in(dockerfile):
        try:
            client.images.get(base)
        except docker.errors.ImageNotFound as exc:
            raise LabError(f"the base image {base} is not in the engine: {fix} "
                           "(a measurement never times a pull)") from exc


def measure_step(
    step: str,
    *,
    scenarios: Sequence[str] = SCENARIOS,
    repeats: int | None = None,
    app: Scratch | None = None,
    target: str | None = None,
    display: BuildDisplay | str | None = None,
    log: Log | None = print,
    results_path: Path | None = None,
    project: Project | None = None,
) -> StepMeasurement:
    """Measure a step with the protocol (module docstring); record and return every run.

    `app`: the scratch copy to build (default: a fresh copy named "measure-<step>"; it is
    edited). `target`: the stage to build (default: "runtime" for multi-stage steps, else the last
    stage). `display`: each build's display (a mode name or a BuildDisplay; default from
    $ANNAPURNA_PROGRESS: a live bar in JupyterLab, none elsewhere). Each distinct terminal command
    is shown once (cold, warm-up, code change, dependency change: the tag and --no-cache differ), and
    each build ends in ONE line ("01-naive: cold 1: 11.6 s, 0 cached, 3 ran") with its full BuildKit
    log collapsed under it in a notebook. With display="none" (or a display object of your own) the
    line goes to `log` instead (default: print; None for silence).
    `project` (basecamp.use_project): measure another Poetry project (default: the app of `app`,
    else the repo's own); its records and images are kept apart from the repo app's.
    Raises LabError when a run's cache state was not what its scenario needs.
    """
    from basecamp.project import resolve
    from basecamp.scratch import scratch_copy
    from basecamp.steps import step_name

    name = step_name(step)
    if project is None and app is not None:
        project = app.project
    elif project is not None and app is not None and resolve(app.project) != resolve(project):
        raise InputError(f"measure_step: the scratch copy {app.name!r} is not a copy of project {project.name!r}")
    project = resolve(project)
    wanted = [s for s in check_scenarios(scenarios) if s in protocol(name)]
    if not wanted:
        raise InputError(f"{name} is measured with {', '.join(protocol(name))} only (measure.PROTOCOL)")
    n = default_repeats() if repeats is None else _check_repeats(repeats)
    target = default_target(step) if target is None else target
    app = app if app is not None else scratch_copy(f"measure-{name}", project=None if project.is_default else project)
    session = _Session(name, project.dockerfile(step), app, target, display, log or (lambda _msg: None),
                       results_path, project)
    return session.finish(session.protocol(wanted, n), n)


# ---------------------------------------------------------------------------------------------
# Reading measurements back from the results file


def _from_records(step: str, records: list[Record], project: Project | None = None) -> StepMeasurement | None:
    from basecamp.images import ImageInfo

    image_rec = next((r for r in records if r.scenario == IMAGE_SCENARIO), None)
    runs: dict[str, list[Run]] = {}
    for r in records:
        if r.scenario not in SCENARIOS or r.wall_s is None:
            continue
        runs.setdefault(r.scenario, []).append(Run(
            scenario=r.scenario, wall_s=float(r.wall_s), cached_steps=int(r.cached_steps or 0),
            ran_steps=int(r.ran_steps or 0), downloads=r.downloads, image_id=r.image_id, build=None,
            index=int(r.run or len(runs[r.scenario]) + 1), size_bytes=r.size_bytes,
        ))
    if image_rec is None and not runs:
        return None
    ref_rec = image_rec or records[0]
    image = ImageInfo(
        ref=_measure_ref(step, project), id=ref_rec.image_id, size_bytes=int(ref_rec.size_bytes or 0),
        compressed_bytes=ref_rec.compressed_bytes, layers=[], base_ref=ref_rec.base.split(" (")[0] or None,
    )
    try:
        target = default_target(step)
    except InputError:
        target = None
    counts = [len(v) for v in runs.values()]
    smoke = next((r.ok for r in reversed(records) if r.scenario == SMOKE_SCENARIO), None)
    return StepMeasurement(
        step=step, image=image, base=ref_rec.base, builder=ref_rec.builder,
        scenarios={s: ScenarioStats(s, runs[s]) for s in SCENARIOS if s in runs}, target=target,
        repeats=max(counts) if counts else 0, measurement=ref_rec.measurement,
        project=ref_rec.project or "annapurna", dockerfile=ref_rec.dockerfile, smoke_ok=smoke,
    )


def _measure_ref(step: str, project: Project | None, label: str = "measure") -> str:
    """annapurna-lab/<step>:<label> for the repo's app, annapurna-lab/<project>-<step>:<label> otherwise
    (a step's name, or the key of a learner's own Dockerfile)."""
    if project is None or project.is_default:
        return f"{config.IMAGE_REPO_PREFIX}/{step}:{label}"
    return f"{config.IMAGE_REPO_PREFIX}/{project.name}-{step}:{label}"


def _canonical(step: str) -> str:
    from basecamp.steps import step_name

    try:
        return step_name(step)
    except InputError:
        return step


def measured(step: str, path: Path | None = None, project: Project | None = None,
             scenarios: Sequence[str] | None = None) -> StepMeasurement | None:
    """The latest finished measurement of `step` that covers `scenarios` (default: the step's `protocol`).

    Reads the results file, builds nothing. A measurement interrupted or failed part-way (no "done"
    record) and a narrower one (say cold only, made by another notebook) are passed over; None when
    no measurement qualifies. `project`: whose measurement (default: the repo's own app).
    """
    from basecamp.project import resolve
    from basecamp.results import load

    name = _canonical(step)
    wanted = set(scenarios_for(name, scenarios))
    by_measurement: dict[str, list[Record]] = {}
    for r in load(name, path, project=resolve(project).name):
        if r.measurement:
            by_measurement.setdefault(r.measurement, []).append(r)
    for records in reversed(list(by_measurement.values())):
        seen = {r.scenario for r in records}
        if DONE_SCENARIO in seen and wanted <= seen:
            return _from_records(name, records, project)
    return None


def latest_rows(steps: Iterable[str] | None = None, path: Path | None = None,
                project: Project | None = None, scenarios: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """`row()` of the latest finished measurement of each step (all measured steps by default), in step order.

    `project`: whose measurements (default: the repo's own app). `scenarios`: what a measurement must
    cover to count (default: each step's whole protocol; see `measured`).
    """
    from basecamp.project import resolve
    from basecamp.results import load

    if steps is None:
        names = sorted({r.step for r in load(path=path, project=resolve(project).name) if r.measurement})
    else:
        names = [_canonical(s) for s in steps]
    rows = []
    for name in names:
        m = measured(name, path, project, scenarios)
        if m is not None:
            rows.append(m.row())
    return rows


# ---------------------------------------------------------------------------------------------
# Tables and files


#: How each scenario is named in the tables' headers.
SCENARIO_TITLES = {"cold": "cold build", "code-change": "code change", "dependency-change": "dependency change",
                   "version-bump": "version bump"}
#: The first table: sizes and the median build time of each scenario.
TABLE_COLUMNS = ("step", "size", "gzipped", *(SCENARIO_TITLES[s] for s in SCENARIOS))
#: The second table's columns under each scenario's title.
DETAIL_COLUMNS = ("cached", "ran", "downloads")
#: Printed under the tables: what every column means.
TABLE_LEGEND = (
    "size: the image uncompressed (as `docker images` shows it); gzipped: `docker save | gzip` of it.\n"
    "times: median of the runs (fastest–slowest); -: scenario not measured.\n"
    "cached / ran: Dockerfile steps BuildKit took from its cache / ran again (a range over the runs).\n"
    "downloads: packages the install fetched, counted in the installer's verbose log (?: this step's log does not say)."
)


def table_cells(row: dict[str, Any]) -> list[str]:
    """The cells of TABLE_COLUMNS for one row: step, sizes, each scenario's time."""
    return [
        str(row["step"]), str(row.get("size", "")), str(row.get("gzipped", "")),
        *(str(row.get(_key(s)) or "-") for s in SCENARIOS),
    ]


def detail_cells(row: dict[str, Any]) -> list[str]:
    """The step, then per scenario: steps cached, steps ran, packages downloaded ("-": not measured)."""
    cells = [str(row["step"])]
    for scenario in SCENARIOS:
        k = _key(scenario)
        if row.get(f"{k}_runs"):
            cells += [str(row[f"{k}_cached"]), str(row[f"{k}_ran"]), str(row[f"{k}_downloads"]) or "?"]
        else:
            cells += ["-", "-", "-"]
    return cells


def _aligned(head: Sequence[str], body: Sequence[Sequence[str]], groups: Sequence[tuple[str, int]] = ()) -> list[str]:
    """Lines of a text table: optional group titles over runs of columns, the header, a rule, the rows.

    `groups`: (title, number of columns) from the left; "" leaves columns without a title.
    """
    widths = [max(len(str(line[i])) for line in [head, *body]) for i in range(len(head))]
    if groups:  # a title wider than its columns widens the group's last column
        at = 0
        for title, span in groups:
            room = sum(widths[at:at + span]) + 2 * (span - 1)
            widths[at + span - 1] += max(0, len(title) - room)
            at += span

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = []
    if groups:
        titles, at = [], 0
        for title, span in groups:
            titles.append(title.ljust(sum(widths[at:at + span]) + 2 * (span - 1)))
            at += span
        out.append("  ".join(titles).rstrip())
    return [*out, line(head), line(["-" * w for w in widths]), *(line(b) for b in body)]


def format_table(rows: list[dict[str, Any]], legend: bool = True) -> str:
    """Two plain-text tables of rows (`StepMeasurement.row()`): sizes and times, then per scenario the
    Dockerfile steps cached and ran and the packages downloaded; a legend under them says what each column means."""
    first = _aligned(TABLE_COLUMNS, [table_cells(r) for r in rows])
    head = ["step", *(DETAIL_COLUMNS * len(SCENARIOS))]
    groups = [("", 1), *((SCENARIO_TITLES[s], len(DETAIL_COLUMNS)) for s in SCENARIOS)]
    second = _aligned(head, [detail_cells(r) for r in rows], groups)
    own = [f"{r['step']}: {r['label']}" + (f", smoke test {r['smoke']}" if r.get("smoke") else "")
           for r in rows if r.get("dockerfile")]  # a learner's Dockerfile (basecamp.yours): say which
    return "\n".join([*first, "", *second, *(["", TABLE_LEGEND] if legend else []), *(["", *own] if own else [])])


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Rows as CSV (columns: the union of the rows' keys, in first-seen order)."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return path


def write_json(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


@dataclass
class BenchReport:
    """What `bench` measured, where it wrote it, and what failed."""

    measurements: list[StepMeasurement]
    failures: dict[str, str]
    wall_s: float
    csv_path: Path
    json_path: Path

    @property
    def table(self) -> str:
        return format_table([m.row() for m in self.measurements])


def bench_dir() -> Path:
    return config.LAB_HOME / "bench"


def all_steps() -> list[str]:
    """Every step that has a Dockerfile, in order ("01-naive", "02-...", ...)."""
    return sorted(p.stem for p in config.DOCKERFILES_DIR.glob("*.Dockerfile"))


def bench(
    steps: Sequence[str] | None = None,
    *,
    repeats: int | None = None,
    scenarios: Sequence[str] = SCENARIOS,
    out: Path | None = None,
    log: Log = print,
) -> BenchReport:
    """The full protocol for every step (all by default); CSV + JSON in LAB_HOME/bench/ (or `out`).

    A step that fails is reported in `failures` and the others still run.
    """
    from basecamp import engine
    from basecamp.steps import step_name

    names = [step_name(s) for s in (steps or all_steps())]
    n = default_repeats() if repeats is None else _check_repeats(repeats)
    wanted = check_scenarios(scenarios)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    measurements: list[StepMeasurement] = []
    failures: dict[str, str] = {}
    for name in names:
        log(f"== {name}: {', '.join(wanted)} × {n}")
        try:
            measurements.append(measure_step(name, scenarios=wanted, repeats=n, log=log))
        except LabError as exc:
            failures[name] = str(exc)
            log(f"!! {name} failed: {exc}")
    wall_s = time.perf_counter() - t0
    folder = out or bench_dir()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    rows = [m.row() for m in measurements]
    csv_path = write_csv(rows, folder / f"bench-{stamp}.csv")
    info = engine.client().version()
    cli = engine.buildkit_cli()
    json_path = write_json({
        "started_at": started.isoformat(timespec="seconds"), "wall_s": round(wall_s, 1), "repeats": n,
        "scenarios": wanted, "cores": os.cpu_count(), "engine": info.get("Version", ""),
        "builder": cli.description if cli else "classic builder", "failures": failures,
        "steps": [m.as_dict() for m in measurements],
    }, folder / f"bench-{stamp}.json")
    return BenchReport(measurements, failures, wall_s, csv_path, json_path)
