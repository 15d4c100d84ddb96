"""The benchmark: the measurement protocol on every step, a table, CSV and JSON (`python -m basecamp bench`)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
    }, folder / f"bench-{stamp}.json")
    return BenchReport(measurements, failures, wall_s, csv_path, json_path)
