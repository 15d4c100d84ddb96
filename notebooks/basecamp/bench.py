"""The benchmark: the measurement protocol on every step, a table, CSV and JSON (`python -m basecamp bench`)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from basecamp import config, engine
from basecamp.errors import LabError
from basecamp.measure import Log, _check_repeats, check_scenarios, default_repeats, measure_step
from basecamp.runs import SCENARIOS, StepMeasurement
from basecamp.steps import step_name
from basecamp.tables import format_table, write_csv, write_json


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

    @property
    def lab_time_table(self) -> str:
        """Per step: the builds' time against the lab's own work around them (runs.LabTime), and the total."""
        rows = [(m.step, m.lab_time) for m in self.measurements if m.lab_time is not None]
        if not rows:
            return ""
        lines = [f"{'step':<22} {'builds':>6} {'build s':>8} {'lab s':>7} {'share':>6} {'sizing s':>9} {'edits s':>8}"]
        for step, t in rows:
            lines.append(f"{step:<22} {t.builds:>6} {t.builds_s:>8.1f} {t.lab_s:>7.1f} {t.share:>6.0%} "
                         f"{t.sizing_s:>9.1f} {t.changes_s:>8.1f}")
        builds_s = sum(t.builds_s for _, t in rows)
        lab_s = sum(t.lab_s for _, t in rows)
        share = lab_s / builds_s if builds_s else 0.0
        lines.append(f"{'all steps':<22} {sum(t.builds for _, t in rows):>6} {builds_s:>8.1f} {lab_s:>7.1f} "
                     f"{share:>6.0%} {sum(t.sizing_s for _, t in rows):>9.1f} {sum(t.changes_s for _, t in rows):>8.1f}")
        return "\n".join(lines)


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
        "lab_time": {m.step: {**asdict(m.lab_time), "lab_s": round(m.lab_time.lab_s, 3),
                              "share": round(m.lab_time.share, 4)}
                     for m in measurements if m.lab_time is not None},
    }, folder / f"bench-{stamp}.json")
    return BenchReport(measurements, failures, wall_s, csv_path, json_path)
