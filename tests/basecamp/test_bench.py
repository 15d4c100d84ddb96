"""bench: every step's protocol, then a table, CSV and JSON; what it refuses before building (no engine)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from basecamp import bench, config
from basecamp.__main__ import main
from basecamp.errors import LabError
from test_runs import measurement  # tests/basecamp is on sys.path (pytest imports test files by name)


def test_all_steps_are_the_dockerfiles_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "dockerfiles"
    folder.mkdir()
    for name in ("02-multi", "01-single", "10-more"):
        (folder / f"{name}.Dockerfile").write_text("FROM scratch\n")
    (folder / "notes.md").write_text("not a step")
    monkeypatch.setattr(config, "DOCKERFILES_DIR", folder)
    assert bench.all_steps() == ["01-single", "02-multi", "10-more"]


def test_bench_refuses_bad_arguments_before_building(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--steps", "01", "--repeats", "0"]) == 1
    assert "repeats=0" in capsys.readouterr().err
    assert main(["bench", "--steps", "01", "--scenarios", "warm"]) == 1
    assert "warm" in capsys.readouterr().err
    assert main(["bench", "--steps", "99"]) == 1
    assert "unknown step '99'" in capsys.readouterr().err


def _fake_engine(monkeypatch: pytest.MonkeyPatch, fake_measure: object) -> None:
    """bench with `fake_measure` for measure_step and an engine that only tells its version."""

    class FakeClient:
        def version(self) -> dict[str, str]:
            return {"Version": "99.0"}

    monkeypatch.setattr(bench, "measure_step", fake_measure)
    monkeypatch.setattr(bench.engine, "client", FakeClient)
    monkeypatch.setattr(bench.engine, "buildkit_cli", lambda: None)


def test_bench_writes_the_rows_and_names_what_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that fails is reported and the others still land in the table, the CSV and the JSON."""
    def fake_measure(name: str, **kwargs: object) -> object:
        if name == "02-warming-up":
            raise LabError("the cold build took 1 step(s) from the layer cache")
        return measurement(name, cold=[10.0, 12.0], code_change=[2.0, 3.0])

    _fake_engine(monkeypatch, fake_measure)
    lines: list[str] = []
    report = bench.bench(["01", "02", "04"], repeats=2, scenarios=["code-change", "cold"], out=tmp_path, log=lines.append)
    assert [m.step for m in report.measurements] == ["01-naive", "04-deps-before-code"]
    assert list(report.failures) == ["02-warming-up"] and any(line.startswith("!! 02-warming-up") for line in lines)
    assert report.table.splitlines()[2].startswith("01-naive")
    rows = list(csv.DictReader(report.csv_path.open()))
    assert [r["step"] for r in rows] == ["01-naive", "04-deps-before-code"] and rows[0]["cold_median_s"] == "11.0"
    data = json.loads(report.json_path.read_text())
    assert data["scenarios"] == ["cold", "code-change"] and data["repeats"] == 2 and data["engine"] == "99.0"
    assert data["builder"] == "classic builder" and list(data["failures"]) == ["02-warming-up"]
    assert [s["step"] for s in data["steps"]] == ["01-naive", "04-deps-before-code"]
    assert data["steps"][0]["code_change_median_s"] == 2.5 and len(data["steps"][0]["runs"]["cold"]) == 2


def test_bench_reports_the_labs_own_time_around_the_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per step and in all: builds' time, the lab's own time (the protocol minus the builds) and its share."""
    from dataclasses import replace

    from basecamp.runs import LabTime

    times = {"01-naive": LabTime(builds_s=30.0, builds=8, sizing_s=5.0, changes_s=1.0, total_s=39.0),
             "04-deps-before-code": LabTime(builds_s=20.0, builds=8, sizing_s=2.0, changes_s=0.5, total_s=21.0)}

    def fake_measure(name: str, **kwargs: object) -> object:
        return replace(measurement(name, cold=[10.0, 12.0]), lab_time=times[name])

    _fake_engine(monkeypatch, fake_measure)
    report = bench.bench(["01", "04"], repeats=2, scenarios=["cold"], out=tmp_path, log=lambda _m: None)
    lines = report.lab_time_table.splitlines()
    assert lines[1].split() == ["01-naive", "8", "30.0", "9.0", "30%", "5.0", "1.0"]
    assert lines[2].split() == ["04-deps-before-code", "8", "20.0", "1.0", "5%", "2.0", "0.5"]
    assert lines[3].split() == ["all", "steps", "16", "50.0", "10.0", "20%", "7.0", "1.5"]
    data = json.loads(report.json_path.read_text())
    assert data["lab_time"]["01-naive"]["lab_s"] == 9.0 and data["lab_time"]["01-naive"]["share"] == 0.3
    assert "9.0 s (30% of the builds)" in times["01-naive"].line()
