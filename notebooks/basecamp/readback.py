"""Measurements read back from the results file: compare steps without rebuilding anything.

`measure_step` appends every run to the results file (basecamp.results) with its measurement's id,
plus an "image" record (the sizes), a "smoke" record when a smoke test ran, and a "done" record last.
`measured(step)` rebuilds the latest finished measurement of a step, `latest_rows()` the row of each.
`measure_or_reuse(step)` measures, unless this run already measured the same inputs (it says so);
`cold_pair(step)` finds two `--no-cache` builds of the same inputs made in this run (notebook 11).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors

from basecamp import engine, images, results
from basecamp.errors import InputError
from basecamp.images import ImageInfo
from basecamp.measure import (
    Log,
    _measure_ref,
    default_repeats,
    default_target,
    inputs_digest,
    measure_step,
    scenarios_for,
    shipped_target,
)
from basecamp.project import resolve
from basecamp.runs import SCENARIOS, MeasuredRow, Run, ScenarioStats, StepMeasurement
from basecamp.scratch import scratch_copy
from basecamp.steps import resolve_step, step_name

if TYPE_CHECKING:
    from basecamp.project import Project
    from basecamp.results import Record


def _runs(records: list[Record]) -> dict[str, list[Run]]:
    """The protocol's runs among `records`, by scenario (a run without a time is left out)."""
    runs: dict[str, list[Run]] = {}
    for r in records:
        if r.kind != results.RUN or r.scenario not in SCENARIOS or r.wall_s is None:
            continue
        runs.setdefault(r.scenario, []).append(Run(
            scenario=r.scenario, wall_s=float(r.wall_s), cached_steps=int(r.cached_steps or 0),
            ran_steps=int(r.ran_steps or 0), downloads=r.downloads, image_id=r.image_id, build=None,
            index=int(r.run or len(runs[r.scenario]) + 1), size_bytes=r.size_bytes,
        ))
    return runs


def _from_records(step: str, records: list[Record], project: Project | None = None) -> StepMeasurement | None:
    image_rec = next((r for r in records if r.kind == results.IMAGE), None)
    runs = _runs(records)
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
    smoke = next((r.ok for r in reversed(records) if r.kind == results.SMOKE), None)
    return StepMeasurement(
        step=step, image=image, base=ref_rec.base, builder=ref_rec.builder,
        scenarios={s: ScenarioStats(s, runs[s]) for s in SCENARIOS if s in runs}, target=target,
        repeats=max(counts) if counts else 0, measurement=ref_rec.measurement,
        project=ref_rec.project or "annapurna", dockerfile=ref_rec.dockerfile, smoke_ok=smoke,
    )


def _canonical(step: str) -> str:
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
    name = _canonical(step)
    wanted = set(scenarios_for(name, scenarios))
    by_measurement: dict[str, list[Record]] = {}
    for r in results.load(name, path, project=resolve(project).name):
        if r.measurement:
            by_measurement.setdefault(r.measurement, []).append(r)
    for records in reversed(list(by_measurement.values())):
        done = any(r.kind == results.DONE for r in records)
        if done and wanted <= {r.scenario for r in records if r.kind == results.RUN}:
            return _from_records(name, records, project)
    return None


def latest_rows(steps: Iterable[str] | None = None, path: Path | None = None,
                project: Project | None = None, scenarios: Sequence[str] | None = None) -> list[MeasuredRow]:
    """`row()` of the latest finished measurement of each step (all measured steps by default), in step order.

    `project`: whose measurements (default: the repo's own app). `scenarios`: what a measurement must
    cover to count (default: each step's whole protocol; see `measured`).
    """
    if steps is None:
        names = sorted({r.step for r in results.load(path=path, project=resolve(project).name) if r.measurement})
    else:
        names = [_canonical(s) for s in steps]
    rows = []
    for name in names:
        m = measured(name, path, project, scenarios)
        if m is not None:
            rows.append(m.row())
    return rows


def measure_or_reuse(step: str, *, scenarios: Sequence[str], repeats: int | None = None,
                     log: Log | None = print, **kwargs: object) -> StepMeasurement:
    """`measure_step`, unless a measurement made earlier in this run read exactly the same inputs.

    "This run" is $ANNAPURNA_RUN_ID (one `./lab test`, one `./lab report`, one `./lab start`); outside a run
    this always measures. The same inputs: the sha256 of the Dockerfile, the target, a fresh scratch copy's
    files, the base images' ids and the engine's id (`measure.inputs_digest`) equals the one the earlier measurement wrote,
    and it is finished and has at least `repeats` runs of each wanted scenario. A reused measurement is
    returned with those scenarios only, and `log` gets one line naming it and the digest. Other keywords go
    to `measure_step`.
    """
    say = log or (lambda _msg: None)
    n = default_repeats() if repeats is None else repeats
    resolved = resolve_step(step)
    resolved = resolved.for_target(shipped_target(resolved))
    app = scratch_copy(f"measure-{resolved.name}")
    found = _same_inputs(resolved.name, inputs_digest(resolved, app.path, engine.client()), scenarios, n)
    if found is None:
        return measure_step(step, scenarios=scenarios, repeats=repeats, app=app, log=log, **kwargs)  # type: ignore[arg-type]
    m, digest = found
    runs = ", ".join(f"{s} × {len(m.scenarios[s].runs)}" for s in m.scenarios)
    say(f"{m.step}: {runs} reused from measurement {m.measurement}, made earlier in this run "
        f"({results.RUN_ID_ENV}={results.run_id()}) from the same inputs (sha256 {digest[:12]}: Dockerfile, "
        "target, build context, base image ids, engine); not built again")
    return m


def _same_inputs(name: str, digest: str, scenarios: Sequence[str], n: int) -> tuple[StepMeasurement, str] | None:
    for _mid, records in _this_run(name, digest):
        m = _from_records(name, records)
        if m is None:
            continue
        if all(s in m.scenarios and len(m.scenarios[s].runs) >= n for s in scenarios):
            m.scenarios = {s: m.scenarios[s] for s in scenarios}
            ref = m.image.ref
            try:
                if engine.client().images.get(ref).id == m.image.id:  # still that image: its layers too
                    m.image = images.inspect_image(ref, base=m.image.base_ref)
            except (docker.errors.ImageNotFound, InputError):  # gone since: the recorded sizes stand
                pass
            return m, digest
    return None


@dataclass(frozen=True)
class ColdPair:
    """Two `--no-cache` builds of one step from the same inputs, made by a measurement earlier in this run."""

    measurement: str
    #: The image ids of its cold runs 1 and 2, both still in the engine.
    image_a: str
    image_b: str
    #: The inputs' sha256 (measure.inputs_digest) both were built from.
    digest: str

    def line(self, step: str) -> str:
        return (f"{step}: the two --no-cache builds are the cold runs 1 and 2 of measurement {self.measurement}, made "
                f"earlier in this run ({results.RUN_ID_ENV}={results.run_id()}) from the inputs a fresh scratch copy "
                f"has now (sha256 {self.digest[:12]}: Dockerfile, target, build context, base image ids, engine); "
                "not built again")


def cold_pair(step: str, target: str | None = None) -> ColdPair | None:
    """Two cold runs of a finished measurement of `step` made in this run from the same inputs, if their
    images are still in the engine (each cold run is a `--no-cache` build, its cache mounts emptied first)."""
    if not results.run_id():
        return None
    resolved = resolve_step(step)
    resolved = resolved.for_target(target if target is not None else shipped_target(resolved))
    digest = inputs_digest(resolved, scratch_copy(f"measure-{resolved.name}").path, engine.client())
    for mid, records in _this_run(resolved.name, digest):
        colds = {r.run: r.image_id for r in records if r.kind == results.RUN and r.scenario == "cold" and r.image_id}
        if 1 in colds and 2 in colds and colds[1] != colds[2] and all(_present(i) for i in (colds[1], colds[2])):
            return ColdPair(measurement=mid, image_a=colds[1], image_b=colds[2], digest=digest)
    return None


def _present(image_id: str) -> bool:
    try:
        engine.client().images.get(image_id)
    except docker.errors.ImageNotFound:
        return False
    return True


def _this_run(name: str, digest: str) -> list[tuple[str, list[Record]]]:
    """Finished measurements of `name` made in this run from `digest`, newest first."""
    run = results.run_id()
    if not run:
        return []
    by_measurement: dict[str, list[Record]] = {}
    for r in results.load(name, project=resolve(None).name):
        if r.measurement and r.inputs == digest and r.run_id == run:
            by_measurement.setdefault(r.measurement, []).append(r)
    return [(mid, records) for mid, records in reversed(list(by_measurement.items()))
            if any(r.kind == results.DONE for r in records)]
