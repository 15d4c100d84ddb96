"""runs: a scenario's statistics and a measured step's row (basecamp.runs.MeasuredRow), no engine."""

from __future__ import annotations

import dataclasses

import pytest
from basecamp.errors import InputError
from basecamp.images import ImageInfo
from basecamp.runs import (
    NOT_MEASURED,
    SCENARIOS,
    MeasuredRow,
    Run,
    ScenarioCells,
    ScenarioStats,
    StepMeasurement,
    fmt_range,
)


def run_of(scenario: str, wall: float) -> Run:
    return Run(scenario, wall, 0, 3, None, "sha256:abc", None)


def measurement(step: str = "01-naive", **walls: list[float]) -> StepMeasurement:
    """A measurement of `step` with the given wall times per scenario (code_change=[...], ...)."""
    image = ImageInfo(ref=f"annapurna-lab/{step}:measure-cold", id="sha256:abc", size_bytes=876_533_902,
                      compressed_bytes=322_662_377, layers=[], base_ref="python:3.11-bookworm")
    scenarios = {}
    for key, values in walls.items():
        scenario = key.replace("_", "-")
        scenarios[scenario] = ScenarioStats(scenario, [
            Run(scenario, w, 1, 2, 5 if scenario != "cold" else None, f"sha256:{i}", None, index=i + 1)
            for i, w in enumerate(values)
        ])
    return StepMeasurement(step, image, "python:3.11-bookworm (stand-in)", "fake builder", scenarios, repeats=3)


# --- statistics -----------------------------------------------------------------------------------


def test_median_min_max_and_spread() -> None:
    stats = ScenarioStats("cold", [run_of("cold", w) for w in (3.0, 1.0, 2.5)])
    assert (stats.median_s, stats.min_s, stats.max_s, stats.spread_s) == (2.5, 1.0, 3.0, 2.0)
    even = ScenarioStats("cold", [run_of("cold", w) for w in (4.0, 1.0, 2.0, 3.0)])
    assert even.median_s == 2.5
    one = ScenarioStats("cold", [run_of("cold", 7.25)])
    assert one.spread_s == 0 and one.timing() == "7.2 s"
    assert stats.timing() == "2.5 s (1.0–3.0)"
    with pytest.raises(InputError, match="no runs"):
        _ = ScenarioStats("cold", []).median_s


def test_ranges_of_counts() -> None:
    assert fmt_range([3, 3, 3]) == "3"
    assert fmt_range([3, 2, 4]) == "2-4"
    assert fmt_range([3, None]) == "?"
    assert fmt_range([]) == ""


# --- the row --------------------------------------------------------------------------------------


def test_row_is_flat_and_lines_up_when_a_scenario_is_missing() -> None:
    row = measurement(cold=[10.0, 12.0, 11.0], code_change=[2.0, 2.5, 3.0]).row()
    assert row["step"] == "01-naive" and row["size"] == "877 MB" and row["gzipped"] == "323 MB"
    assert row["cold_median_s"] == 11.0 and row["cold_spread_s"] == 2.0 and row["cold_runs"] == 3
    assert row["cold"] == "11.0 s (10.0–12.0)" and row["cold_downloads"] == "?"
    assert row["code_change_median_s"] == 2.5 and row["code_change_downloads"] == "5"
    assert row["dependency_change_median_s"] is None and row["dependency_change_runs"] == 0
    assert all(not isinstance(v, (list, dict)) for v in row.values()), "flat: CSV-ready"


def test_the_row_is_typed_and_its_columns_come_from_its_fields() -> None:
    """Attribute access for the package, one flat dict (the CSV's columns, in order) for files and notebooks."""
    row = measurement(cold=[10.0, 12.0, 11.0], version_bump=[1.23456]).row()
    assert isinstance(row, MeasuredRow) and row.step == "01-naive" and row.size_bytes == 876_533_902
    assert row.cells("cold") == ScenarioCells(median_s=11.0, min_s=10.0, max_s=12.0, spread_s=2.0, runs=3,
                                              cached="1", ran="2", downloads="?", timing="11.0 s (10.0–12.0)")
    assert row.cells("version-bump").median_s == 1.235, "times are rounded to the millisecond"
    assert row.cells("code-change") is NOT_MEASURED and list(row.scenarios) == list(SCENARIOS)
    flat = row.as_dict()
    head = ["step", "label", "smoke", "dockerfile", "project", "base", "builder", "target", "repeats",
            "size_bytes", "size", "compressed_bytes", "gzipped"]
    per_scenario = ["median_s", "min_s", "max_s", "spread_s", "runs", "cached", "ran", "downloads"]
    keys = [s.replace("-", "_") for s in SCENARIOS]
    assert list(flat) == head + [c for k in keys for c in [*(f"{k}_{p}" for p in per_scenario), k]]
    assert dict(row) == flat and len(row) == len(flat) and row["version_bump"] == "1.2 s"
    with pytest.raises(KeyError):
        _ = row["cold_mean_s"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.step = "other"  # type: ignore[misc]


def test_a_learners_row_says_whose_dockerfile_and_its_smoke_test() -> None:
    m = dataclasses.replace(measurement("yours", cold=[9.0]), dockerfile="/p/Dockerfile", smoke_ok=False)
    row = m.row()
    assert (row.label, row.smoke, row.dockerfile) == ("your Dockerfile (Dockerfile)", "failed", "/p/Dockerfile")
    assert measurement(cold=[1.0]).row().smoke == "", "no smoke test: an empty cell"
