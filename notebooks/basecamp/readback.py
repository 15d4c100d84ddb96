"""Measurements read back from the results file: compare steps without rebuilding anything.

`measure_step` appends every run to the results file (basecamp.results) with its measurement's id,
plus an "image" record (the sizes), a "smoke" record when a smoke test ran, and a "done" record last.
`measured(step)` rebuilds the latest finished measurement of a step, `latest_rows()` the row of each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from basecamp import results
from basecamp.errors import InputError
from basecamp.images import ImageInfo
from basecamp.measure import _measure_ref, default_target, scenarios_for
from basecamp.project import resolve
from basecamp.runs import SCENARIOS, MeasuredRow, Run, ScenarioStats, StepMeasurement
from basecamp.steps import step_name

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
