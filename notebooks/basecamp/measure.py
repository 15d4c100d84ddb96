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
spread (min-max) are reported. Cache state is verified, not assumed: `verify` (basecamp.verify)
checks every run (a cold build that took any step from the cache is invalid, a code change must re-run
the COPY of the code, ...) and `measure_step` raises LabError instead of reporting an invalid number.

Every run is appended to the results file (basecamp.results) with the measurement's id, plus one
"image" record with the sizes of the image the step makes; basecamp.readback's `measured(step)` and
`latest_rows()` read them back, so a summary can compare steps without rebuilding anything. The runs,
their statistics and the measured step's row are basecamp.runs; the tables and files basecamp.tables;
the benchmark over every step basecamp.bench.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basecamp import buildcache, config, disk, enginelock, images, installer, results
from basecamp.build import build
from basecamp.buildcache import Tracking
from basecamp.display import make_display
from basecamp.errors import InputError, LabError
from basecamp.project import resolve
from basecamp.results import DONE, IMAGE, SMOKE, kind_of

# re-exported (F401): basecamp.versionbump, notebook 10 and the tests ask them of `measure`
from basecamp.runs import (
    SCENARIOS,
    LabTime,
    Run,
    ScenarioStats,
    StepMeasurement,
    fmt_range,  # noqa: F401
)
from basecamp.scratch import scratch_copy
from basecamp.steps import STEP_LABEL, ResolvedStep, base_of, resolve_file, resolve_step
from basecamp.tables import aligned as _aligned  # noqa: F401
from basecamp.uvlock import prepare_context
from basecamp.verify import (
    dependency_install_reran,  # noqa: F401
    verify,
)

if TYPE_CHECKING:
    from basecamp.build import BuildResult
    from basecamp.display import BuildDisplay
    from basecamp.images import ImageInfo
    from basecamp.project import Project
    from basecamp.results import Record
    from basecamp.scratch import Scratch

#: The record that holds a measurement's image sizes (its kind, and its scenario for older readers).
IMAGE_SCENARIO = IMAGE
#: Written last by `measure_step`: a measurement without it was interrupted or failed part-way.
DONE_SCENARIO = DONE
#: The record of a smoke test run on the measured image (basecamp.yours): `ok`, and its line in `note`.
SMOKE_SCENARIO = SMOKE
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
#: Stage name that multi-stage steps build (`--target runtime`); the image measured is that stage's.
RUNTIME_TARGET = "runtime"

Log = Callable[[str], None]


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
    return shipped_target(resolve_step(step))


def shipped_target(resolved: ResolvedStep) -> str | None:
    """`default_target` of a Dockerfile already resolved: "runtime" when it has that stage, else None."""
    return RUNTIME_TARGET if resolved.has_stage(RUNTIME_TARGET) else None


def target_base(step: str, target: str | None = None) -> str:
    """The image the built stage (`target`, else the last) starts from (see steps.base_of)."""
    return base_of(step, target)


def external_bases(step: str) -> list[str]:
    """The images the step's stages start from that are not stages of the same Dockerfile."""
    return resolve_step(step).external_bases


def external_bases_in(path: Path) -> list[str]:
    """`external_bases` of any Dockerfile file."""
    return resolve_file(path).external_bases


def describe_base_short(client: Any, base: str) -> str:
    """"python:3.11-slim-bookworm (stand-in)" or "... (official)"."""
    labels = client.images.get(base).labels or {}
    return f"{base} ({'stand-in' if labels.get(config.STANDIN_LABEL) == 'true' else 'official'})"


def _install_counts(build: BuildResult) -> tuple[int | None, int | None, int | None]:
    """(installed, downloaded, from_cache) from the install's log (basecamp.installer), else unknown."""
    try:
        report = installer.install_report(build)
    except LabError:
        return None, None, None

    def count(items: Any) -> int | None:
        return None if items is None else len(items)

    return count(report.installed), count(report.downloaded), count(report.from_cache)


def _drop_superseded(client: Any, old_id: str | None, new_id: str) -> None:
    """Remove the image a measurement tag pointed to before, when nothing else names it (lab images only)."""
    import docker.errors  # here: importing `measure` needs no Docker SDK

    if not old_id or old_id == new_id:
        return
    try:
        image = client.images.get(old_id)
        if image.tags or (image.labels or {}).get(config.LAB_LABEL) != config.LAB_LABEL_VALUE:
            return
        client.images.remove(old_id)
    except docker.errors.APIError:
        pass  # in use by a container, or already gone: `./lab clean` removes it later


def inputs_digest(resolved: ResolvedStep, context: Path, client: Any) -> str:
    """sha256 of what a measurement's builds read before any edit: the Dockerfile's text, the target, every
    file of the build context (path and bytes), the id of each base image, and the engine that builds (its id).

    Two measurements with the same digest built the same thing from the same inputs; `readback.measure_or_reuse`
    reuses one only then. Every file counts, even one a .dockerignore leaves out: stricter, never looser.
    """
    sha = hashlib.sha256()
    for part in (resolved.text, resolved.target or "", str(client.info().get("ID", ""))):
        sha.update(part.encode() + b"\0")
    for base in resolved.external_bases:
        sha.update(f"{base}={client.images.get(base).id}".encode() + b"\0")
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(context)).encode() + b"\0")
        sha.update(hashlib.sha256(path.read_bytes()).digest())
    return sha.hexdigest()


class _Session:
    """One measure_step call: builds the step from `app`, times, tracks and records each run.

    The Dockerfile is resolved once (`resolved`, basecamp.steps.ResolvedStep; made from `name`,
    `dockerfile` and `target` when not given): every run asks its model, nothing reads the file again.
    """

    def __init__(self, name: str, dockerfile: Path, app: Scratch, target: str | None,
                 display: BuildDisplay | str | None, log: Log, results_path: Path | None, project: Project,
                 *, source: str = "", missing_base: str = "run `./lab prepare` first",
                 resolved: ResolvedStep | None = None) -> None:
        from basecamp import engine  # here, not above: it loads the docker SDK

        if resolved is None:
            resolved = resolve_file(dockerfile, name, target, project=project)
        self.client = engine.client()
        self.resolved = resolved
        #: The row's key: a step name ("01-naive"), or a learner's Dockerfile's (basecamp.yours).
        self.step = resolved.name
        self.project = project
        self.dockerfile = resolved.path
        #: The learner's Dockerfile measured ("" for a step): written into every record.
        self.source = source
        self.app = app
        self.target = resolved.target
        self.display = display
        self.log = log
        self.results_path = results_path
        self.base = resolved.base
        _require_bases(self.client, resolved, missing_base)
        prepare_context(app, resolved.path, resolved.text)  # a uv step's context needs a uv.lock
        # the engine's free disk, before the first build (basecamp.disk: once per process)
        disk.ensure_disk_space(self.client)
        #: What the builds read, before any edit (inputs_digest); every record carries it and the run's id.
        self.inputs = inputs_digest(resolved, app.path, self.client)
        self.base_desc = describe_base_short(self.client, self.base)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.measurement = f"{self.step}@{stamp}-{uuid.uuid4().hex[:6]}"
        self.image: ImageInfo | None = None
        self.image_build: BuildResult | None = None
        self.image_recorded = False
        self.builder = ""
        #: Commands this measurement has shown: each distinct command is shown once.
        self.commands: set[str] = set()
        #: Where the protocol's time goes (runs.LabTime): the builds, the sizing, the edits between builds.
        self.builds_s, self.builds, self.sizing_s, self.changes_s, self.total_s = 0.0, 0, 0.0, 0.0, 0.0

    def _display(self) -> BuildDisplay:
        """One build's display: ours report the measurement's line, a caller's own object is used as is."""
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
        import docker.errors  # here, not above: the docker SDK loads only when an engine is asked

        try:
            return str(self.client.images.get(tag).id)
        except docker.errors.ImageNotFound:
            return None

    def build(self, label: str, *, no_cache: bool) -> tuple[BuildResult, Tracking, BuildDisplay]:
        tag = _measure_ref(self.step, self.project, f"measure-{label}")
        old = self._image_id(tag)
        shown = self._display()
        # build() tracks the cache records the build makes (once: two disk-usage queries) and says what it saw
        result = build(self.dockerfile, self.app.path, tag, target=self.target, no_cache=no_cache,
                       labels={STEP_LABEL: self.step, config.PROJECT_LABEL: self.project.name}, display=shown,
                       model=self.resolved.model)
        tracking = result.tracking if result.tracking is not None else Tracking()
        self.builds_s += result.wall_s
        self.builds += 1
        _drop_superseded(self.client, old, result.image_id)
        self.builder = result.builder
        if self.image is None:  # the first build of the measurement is the image it reports
            # tagged "<step>:measure" too, so later runs retagging "measure-<scenario>" never drop it
            kept = self._tag_also(result.image_id, "measure")
            t0 = time.perf_counter()
            self.image = images.inspect_image(kept, base=self.base)
            self.sizing_s += time.perf_counter() - t0
            self.image_build = result
            if self.image.gzip_count is not None:  # says when layers' gzip counts were reused (by sha256)
                self.log(f"{self.step}: {self.image.gzip_count.line()}")
        return result, tracking, shown

    def _tag_also(self, image_id: str, label: str) -> str:
        """Tag `image_id` "<step>:<label>" as well and return that ref; the image the tag named before goes when
        nothing names it any more."""
        ref = _measure_ref(self.step, self.project, label)
        old = self._image_id(ref)
        repo, _, tag = ref.rpartition(":")
        self.client.images.get(image_id).tag(repo, tag)
        _drop_superseded(self.client, old, image_id)
        return ref

    def warm_up(self) -> None:
        result, _, shown = self.build("warm", no_cache=False)
        self.say(shown, result, f"warm-up (not measured): {result.wall_s:.1f} s, "
                                f"{len(result.cached_steps)} cached, {len(result.ran_steps)} ran")

    def run(self, scenario: str, index: int) -> Run:
        result, tracking, shown = self.build(scenario, no_cache=scenario == "cold")
        if scenario == "cold" and result.image_id:
            # "<step>:measure-cold-<n>" too: a later measurement of other scenarios, which moves ":measure" and
            # ":measure-cold", leaves it, so `readback.cold_pair` compares cold runs 1 and 2 instead of building again
            self._tag_also(result.image_id, f"measure-cold-{index}")
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
        rec = results.Record(
            step=self.step, scenario=scenario, kind=kind_of(scenario), wall_s=round(run.wall_s, 3) if run else None,
            size_bytes=size, compressed_bytes=compressed,
            cached_steps=run.cached_steps if run else None, ran_steps=run.ran_steps if run else None,
            builder=result.builder, base=self.base_desc, image_id=result.image_id,
            downloads=run.downloads if run else None, run=run.index if run else None,
            measurement=self.measurement, project=self.project.name, dockerfile=self.source, ok=ok, note=note,
            package_index=result.package_index, inputs=self.inputs, run_id=results.run_id(),
        )
        return results.record(rec, self.results_path)

    def protocol(self, wanted: Sequence[str], n: int) -> dict[str, list[Run]]:
        """Every scenario's runs (module docstring): cold with empty cache mounts, changes after a warm-up.

        The engine is held for the whole protocol (basecamp.enginelock): another notebook's build
        waits, and this one waits for another's measurement, so neither times the other.
        """
        with enginelock.exclusive(enginelock.describe(f"measuring {self.step}")):
            t0 = time.perf_counter()  # after the lock: waiting for another notebook is not the lab's work
            try:
                return self._protocol(wanted, n)
            finally:
                self.total_s = time.perf_counter() - t0

    def _protocol(self, wanted: Sequence[str], n: int) -> dict[str, list[Run]]:
        model = self.resolved.model
        runs: dict[str, list[Run]] = {}
        for scenario in wanted:
            runs[scenario] = []
            if scenario != "cold":
                self.warm_up()
            for i in range(1, n + 1):
                if scenario == "cold":
                    at_risk = buildcache.cache_mounts_at_risk(model, self.client)
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
                    buildcache.prune_lab_cache_mounts(self.client, dockerfile_text=model)
                    left = buildcache.remaining_lab_cache_mounts(self.client, dockerfile_text=model)
                    if left:
                        raise LabError(f"{self.step}: could not empty the lab's cache mounts before a cold build "
                                       f"(in use by another build?): {', '.join(r.id for r in left)}")
                else:
                    self.change(scenario)
                runs[scenario].append(self.run(scenario, i))
        return runs

    def change(self, scenario: str) -> None:
        """The edit a scenario makes before its build (timed: it is the lab's work, not the build's)."""
        t0 = time.perf_counter()
        if scenario == "code-change":
            self.app.edit_code()
        elif scenario == "version-bump":
            self.app.bump_version()
        else:
            self.app.change_dependency()
        self.changes_s += time.perf_counter() - t0

    def lab_time(self) -> LabTime:
        return LabTime(builds_s=round(self.builds_s, 3), builds=self.builds, sizing_s=round(self.sizing_s, 3),
                       changes_s=round(self.changes_s, 3), total_s=round(self.total_s, 3))

    def finish(self, runs: dict[str, list[Run]], repeats: int, smoke_ok: bool | None = None) -> StepMeasurement:
        """Write the "done" record (the measurement is complete) and return it."""
        assert self.image is not None and self.image_build is not None
        self.record(DONE_SCENARIO, None, self.image_build, size=None)
        return StepMeasurement(
            step=self.step, image=self.image, base=self.base_desc, builder=self.builder,
            scenarios={s: ScenarioStats(s, r) for s, r in runs.items()}, target=self.target, repeats=repeats,
            measurement=self.measurement, project=self.project.name, dockerfile=self.source, smoke_ok=smoke_ok,
            lab_time=self.lab_time(),
        )


def _require_bases(client: Any, resolved: ResolvedStep, fix: str) -> None:
    import docker.errors  # here, not above: the docker SDK loads only when an engine is asked

    for base in resolved.external_bases:
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
    if project is None and app is not None:
        project = app.project
    elif project is not None and app is not None and resolve(app.project) != resolve(project):
        raise InputError(f"measure_step: the scratch copy {app.name!r} is not a copy of project {project.name!r}")
    project = resolve(project)
    resolved = resolve_step(step, project)  # located, read and parsed once: every run asks this
    name = resolved.name
    wanted = [s for s in check_scenarios(scenarios) if s in protocol(name)]
    if not wanted:
        raise InputError(f"{name} is measured with {', '.join(protocol(name))} only (measure.PROTOCOL)")
    n = default_repeats() if repeats is None else _check_repeats(repeats)
    resolved = resolved.for_target(shipped_target(resolved) if target is None else target)
    app = app if app is not None else scratch_copy(f"measure-{name}", project=None if project.is_default else project)
    session = _Session(name, resolved.path, app, resolved.target, display, log or (lambda _msg: None),
                       results_path, project, resolved=resolved)
    return session.finish(session.protocol(wanted, n), n)  # its lab_time: where the time went (./lab bench)


def _measure_ref(step: str, project: Project | None, label: str = "measure") -> str:
    """annapurna-lab/<step>:<label> for the repo's app, annapurna-lab/<project>-<step>:<label> otherwise
    (a step's name, or the key of a learner's own Dockerfile)."""
    if project is None or project.is_default:
        return f"{config.IMAGE_REPO_PREFIX}/{step}:{label}"
    return f"{config.IMAGE_REPO_PREFIX}/{project.name}-{step}:{label}"
