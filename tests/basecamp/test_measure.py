"""measure: the protocol's statistics, verification, rows and files (no engine), and a real run (engine)."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from basecamp import config, measure
from basecamp.__main__ import main
from basecamp.build import BuildResult
from basecamp.errors import InputError
from basecamp.images import ImageInfo
from basecamp.measure import (
    Run,
    ScenarioStats,
    StepMeasurement,
    copy_sources,
    fmt_range,
    format_table,
    latest_rows,
    measured,
    verify,
    write_csv,
    write_json,
)
from basecamp.progress import parse_header
from basecamp.results import Record, load, record

# --- helpers --------------------------------------------------------------------------------------


def fake_build(*steps: tuple[str, str]) -> BuildResult:
    """A BuildResult whose steps are (name, status) pairs, e.g. ("[2/4] COPY . .", "done")."""
    parsed = []
    for vertex, (name, status) in enumerate(steps, start=1):
        step = parse_header(vertex, name)
        step.status = status  # type: ignore[assignment]
        parsed.append(step)
    return BuildResult("annapurna-lab/x:t", "sha256:abc", Path("Dockerfile"), Path("."), "fake", 1.0, parsed, "",
                       "2026-01-01T00:00:00+00:00")


def run_of(scenario: str, build: BuildResult | None = None, wall: float = 1.0, **kw: Any) -> Run:
    cached = len(build.cached_steps) if build else 0
    ran = len(build.ran_steps) if build else 0
    return Run(scenario, wall, cached, ran, kw.pop("downloads", None), "sha256:abc", build, **kw)


NAIVE = ("[1/4] FROM docker.io/library/python:3.11-bookworm", "[2/4] RUN pip install poetry",
         "[3/4] COPY . .", "[4/4] RUN poetry install")
MULTI = ("[builder 1/6] FROM docker.io/library/python:3.11-bookworm", "[builder 2/6] RUN pip install poetry==2.5.1",
         "[builder 3/6] WORKDIR /app", "[builder 4/6] COPY pyproject.toml poetry.lock ./",
         "[builder 5/6] RUN touch README.md", "[builder 6/6] RUN poetry install --without dev --no-root",
         "[runtime 1/3] FROM docker.io/library/python:3.11-slim-bookworm",
         "[runtime 2/3] COPY --from=builder /app/.venv /app/.venv", "[runtime 3/3] COPY annapurna ./annapurna")


def with_status(names: tuple[str, ...], statuses: str) -> BuildResult:
    """statuses: one letter per step, c(ached) or d(one)."""
    return fake_build(*[(n, "cached" if s == "c" else "done") for n, s in zip(names, statuses)])


def measurement(step: str = "01-naive", **walls: list[float]) -> StepMeasurement:
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
    stats = ScenarioStats("cold", [run_of("cold", wall=w) for w in (3.0, 1.0, 2.5)])
    assert (stats.median_s, stats.min_s, stats.max_s, stats.spread_s) == (2.5, 1.0, 3.0, 2.0)
    even = ScenarioStats("cold", [run_of("cold", wall=w) for w in (4.0, 1.0, 2.0, 3.0)])
    assert even.median_s == 2.5
    one = ScenarioStats("cold", [run_of("cold", wall=7.25)])
    assert one.spread_s == 0 and one.timing() == "7.2 s"
    assert stats.timing() == "2.5 s (1.0–3.0)"
    with pytest.raises(InputError, match="no runs"):
        _ = ScenarioStats("cold", []).median_s


def test_ranges_of_counts() -> None:
    assert fmt_range([3, 3, 3]) == "3"
    assert fmt_range([3, 2, 4]) == "2-4"
    assert fmt_range([3, None]) == "?"
    assert fmt_range([]) == ""


def test_repeats_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(measure.REPEATS_ENV, raising=False)
    assert measure.default_repeats() == measure.DEFAULT_REPEATS == 2
    monkeypatch.setenv(measure.REPEATS_ENV, "5")
    assert measure.default_repeats() == 5
    for bad in ("0", "-1", "two", "2.5"):
        monkeypatch.setenv(measure.REPEATS_ENV, bad)
        with pytest.raises(InputError, match="ANNAPURNA_REPEATS"):
            measure.default_repeats()


def test_scenarios_are_checked_and_put_in_protocol_order() -> None:
    assert measure.check_scenarios(["dependency-change", "cold"]) == ["cold", "dependency-change"]
    assert measure.check_scenarios("code-change") == ["code-change"]
    with pytest.raises(InputError, match="warm"):
        measure.check_scenarios(["cold", "warm"])
    with pytest.raises(InputError):
        measure.check_scenarios([])


# --- what the steps copy --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("[3/4] COPY . .", ["."]),
    ("[builder 4/6] COPY pyproject.toml poetry.lock ./", ["pyproject.toml", "poetry.lock"]),
    ("[runtime 3/3] COPY annapurna ./annapurna", ["annapurna"]),
    ("[2/3] COPY --chown=1000:1000 ./annapurna/ /app/annapurna", ["annapurna"]),
    ('[2/3] COPY ["pyproject.toml", "poetry.lock", "./"]', ["pyproject.toml", "poetry.lock"]),
    ("[runtime 2/3] COPY --from=builder /app/.venv /app/.venv", None),
    ("[2/4] RUN pip install poetry", None),
])
def test_copy_sources(name: str, expected: list[str] | None) -> None:
    assert copy_sources(parse_header(1, name)) == expected


def test_code_and_dependency_copies_are_found() -> None:
    multi = with_status(MULTI, "ddddddddd")
    assert [s.name for s in measure.code_copies(multi)] == ["[runtime 3/3] COPY annapurna ./annapurna"]
    assert [s.name for s in measure.dependency_copies(multi)] == ["[builder 4/6] COPY pyproject.toml poetry.lock ./"]
    naive = with_status(NAIVE, "dddd")
    assert measure.code_copies(naive) == measure.dependency_copies(naive) == [naive.steps[2]]


# --- verification ---------------------------------------------------------------------------------


def test_a_cold_run_must_run_every_step() -> None:
    assert verify(run_of("cold", with_status(NAIVE, "cddd"))) == [], "FROM steps do not count"
    (problem,) = verify(run_of("cold", with_status(NAIVE, "ccdd")))
    assert "took 1 step(s) from the layer cache" in problem and "pip install poetry" in problem
    (problem,) = verify(run_of("cold", with_status(NAIVE, "cddd"), from_cache=3))
    assert "3 package(s) from Poetry's cache" in problem
    (problem,) = verify(run_of("cold", with_status(NAIVE, "cddd"), foreign_cache_mounts=["abc: cached mount /x"]))
    assert "did not create" in problem and "abc" in problem


def test_a_code_change_must_rerun_the_code_copy_on_a_warm_cache() -> None:
    assert verify(run_of("code-change", with_status(NAIVE, "ccdd"))) == []
    (problem,) = verify(run_of("code-change", with_status(MULTI, "cccccccdd")))
    assert "not warm" in problem and "COPY --from=builder" in problem, "the venv copy comes before the code"
    assert verify(run_of("code-change", with_status(MULTI, "ccccccccd"))) == []
    (problem,) = verify(run_of("code-change", with_status(NAIVE, "cccc")))
    assert "COPY of the code did not re-run" in problem
    (problem,) = verify(run_of("code-change", with_status(NAIVE, "cddd")))
    assert "not warm" in problem and "pip install poetry" in problem
    (problem,) = verify(run_of("code-change", fake_build(("[1/2] FROM x", "cached"), ("[2/2] RUN true", "done"))))
    assert "no COPY of the app's code" in problem


def test_a_dependency_change_must_rerun_the_copy_and_the_install() -> None:
    assert verify(run_of("dependency-change", with_status(MULTI, "cccdddcdd"))) == []
    problems = verify(run_of("dependency-change", with_status(MULTI, "ccccccccd")))
    assert any("pyproject.toml / poetry.lock did not re-run" in p for p in problems)
    assert any("`poetry install` did not re-run" in p for p in problems)
    (problem,) = verify(run_of("dependency-change", with_status(MULTI, "cdcdddcdd")))
    assert "not warm" in problem and "pip install poetry" in problem


def test_unknown_scenarios_are_refused() -> None:
    with pytest.raises(InputError):
        verify(run_of("warm", with_status(NAIVE, "cccc")))


# --- Dockerfile stages ----------------------------------------------------------------------------


@pytest.fixture
def dockerfiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "dockerfiles"
    folder.mkdir()
    (folder / "01-single.Dockerfile").write_text("FROM python:3.11-bookworm\nRUN true\n")
    (folder / "02-multi.Dockerfile").write_text(textwrap.dedent("""\
        FROM python:3.11-bookworm AS builder
        RUN true
        FROM builder AS tested
        FROM python:3.11-slim-bookworm AS runtime
        COPY --from=builder /a /a
    """))
    monkeypatch.setattr(config, "DOCKERFILES_DIR", folder)
    return folder


def test_targets_and_bases(dockerfiles: Path) -> None:
    assert measure.default_target("01") is None and measure.default_target("02") == "runtime"
    assert measure.target_base("01") == "python:3.11-bookworm"
    assert measure.target_base("02", "runtime") == "python:3.11-slim-bookworm"
    assert measure.target_base("02", "tested") == "python:3.11-bookworm", "a stage built on a stage: its base"
    with pytest.raises(InputError, match="no stage named"):
        measure.target_base("02", "nope")
    assert measure.external_bases("02") == ["python:3.11-bookworm", "python:3.11-slim-bookworm"]
    assert measure.all_steps() == ["01-single", "02-multi"]


# --- rows, tables, files --------------------------------------------------------------------------


def test_row_is_flat_and_lines_up_when_a_scenario_is_missing() -> None:
    row = measurement(cold=[10.0, 12.0, 11.0], code_change=[2.0, 2.5, 3.0]).row()
    assert row["step"] == "01-naive" and row["size"] == "877 MB" and row["gzipped"] == "323 MB"
    assert row["cold_median_s"] == 11.0 and row["cold_spread_s"] == 2.0 and row["cold_runs"] == 3
    assert row["cold"] == "11.0 s (10.0–12.0)" and row["cold_downloads"] == "?"
    assert row["code_change_median_s"] == 2.5 and row["code_change_downloads"] == "5"
    assert row["dependency_change_median_s"] is None and row["dependency_change_runs"] == 0
    assert all(not isinstance(v, (list, dict)) for v in row.values()), "flat: CSV-ready"


def test_table_has_one_line_per_step_and_says_what_its_columns_mean() -> None:
    rows = [measurement(cold=[10.0]).row(),
            measurement("06-cache-mounts", cold=[5.0, 6.0], code_change=[1.0], dependency_change=[2.0],
                        version_bump=[3.0]).row()]
    table = format_table(rows).splitlines()
    assert [c.strip() for c in table[0].split("  ") if c.strip()] == [
        "step", "size", "gzipped", "cold build", "code change", "dependency change", "version bump"]
    assert set(table[1]) <= {"-", " "}
    assert table[2].startswith("01-naive") and "10.0 s" in table[2]
    assert table[3].startswith("06-cache-mounts") and "5.5 s (5.0–6.0)" in table[3]
    # the second table: per scenario, steps cached / ran and downloads, each in its own titled column
    second = table[5:10]
    assert second[0].split() == ["cold", "build", "code", "change", "dependency", "change", "version", "bump"]
    assert second[1].split() == ["step"] + ["cached", "ran", "downloads"] * 4
    assert second[3].split() == ["01-naive", "1", "2", "?", "-", "-", "-", "-", "-", "-", "-", "-", "-"]
    assert second[4].split() == ["06-cache-mounts", "1", "2", "?", "1", "2", "5", "1", "2", "5", "1", "2", "5"]
    # each group title stands over its first column
    for title, column in (("code change", 4), ("dependency change", 7), ("version bump", 10)):
        starts = [i for i, ch in enumerate(second[1]) if ch != " " and (i == 0 or second[1][i - 1] == " ")]
        assert second[0].index(title) == starts[column], (title, second[0], second[1])
    assert not any(" · " in line for line in table), "no cell packs three scenarios into one"
    legend = "\n".join(table[10:])
    for word in ("gzipped:", "times:", "cached / ran:", "downloads:", "?:", "-:"):
        assert word in legend
    assert format_table(rows, legend=False).splitlines()[-1].startswith("06-cache-mounts")


def test_csv_and_json_round_trip(tmp_path: Path) -> None:
    m = measurement(cold=[10.0, 12.0], code_change=[2.0, 3.0], dependency_change=[4.0, 5.0])
    rows = [m.row(), measurement("04-deps-before-code", cold=[8.0]).row()]
    path = write_csv(rows, tmp_path / "out" / "bench.csv")
    read = list(csv.DictReader(path.open()))
    assert [r["step"] for r in read] == ["01-naive", "04-deps-before-code"]
    assert float(read[0]["cold_median_s"]) == 11.0 and read[1]["code_change_median_s"] == ""
    data = json.loads(write_json({"steps": [m.as_dict()]}, tmp_path / "out" / "bench.json").read_text())
    (step,) = data["steps"]
    assert step["image"]["compressed_bytes"] == 322_662_377
    assert [r["wall_s"] for r in step["runs"]["cold"]] == [10.0, 12.0]


# --- reading measurements back --------------------------------------------------------------------


def _records(measurement_id: str, step: str = "01-naive", cold: tuple[float, ...] = (10.0, 12.0),
             *, full: bool = True, done: bool = True) -> None:
    common = {"step": step, "builder": "fake", "base": "python:3.11-bookworm (stand-in)", "measurement": measurement_id}
    record(Record(scenario="image", size_bytes=100, compressed_bytes=40, image_id="sha256:img", **common))
    for i, wall in enumerate(cold, start=1):
        record(Record(scenario="cold", wall_s=wall, cached_steps=0, ran_steps=3, run=i, size_bytes=100,
                      image_id=f"sha256:{i}", **common))
    if full:
        record(Record(scenario="code-change", wall_s=2.0, cached_steps=1, ran_steps=2, run=1, downloads=0,
                      image_id="sha256:c", **common))
        record(Record(scenario="dependency-change", wall_s=3.0, cached_steps=1, ran_steps=2, run=1, downloads=1,
                      image_id="sha256:d", **common))
        if "version-bump" in measure.protocol(step):
            record(Record(scenario="version-bump", wall_s=4.0, cached_steps=1, ran_steps=2, run=1, downloads=9,
                          image_id="sha256:v", **common))
    if done:
        record(Record(scenario="done", **common))


def test_measured_reads_the_latest_measurement_back() -> None:
    assert measured("01-naive") is None
    record(Record(step="01-naive", scenario="cold", wall_s=99.0))  # a notebook's own record: not the protocol's
    _records("m1", cold=(50.0,))
    _records("m2")
    record(Record(step="01-naive", scenario="image", measurement="m3", size_bytes=1))  # invalid: no runs
    _records("m4", cold=(1.0,), done=False)  # interrupted part-way: never read back
    _records("m5", cold=(7.0,), full=False)  # finished, but cold only (another notebook's narrower need)
    m = measured("01-naive")
    assert m is not None and m.measurement == "m2"
    narrow = measured("01-naive", scenarios=["cold"])
    assert narrow is not None and narrow.measurement == "m5"
    assert m.image.size_bytes == 100 and m.image.compressed_bytes == 40 and m.image.base_ref == "python:3.11-bookworm"
    assert m.base == "python:3.11-bookworm (stand-in)"
    assert list(m.scenarios) == ["cold", "code-change", "dependency-change"]
    assert m.scenarios["cold"].median_s == 11.0 and m.scenarios["code-change"].downloads == "0"
    assert [r.index for r in m.scenarios["cold"].runs] == [1, 2] and m.repeats == 2


def test_latest_rows_compare_steps_without_building() -> None:
    _records("a", step="04-deps-before-code", cold=(8.0,))
    _records("b", step="01-naive")
    rows = latest_rows()
    assert [r["step"] for r in rows] == ["01-naive", "04-deps-before-code"]
    assert rows[1]["cold_median_s"] == 8.0
    assert [r["step"] for r in latest_rows(["04-deps-before-code"])] == ["04-deps-before-code"]
    assert len(load()) == 12


def test_bench_refuses_bad_arguments_before_building(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--steps", "01", "--repeats", "0"]) == 1
    assert "repeats=0" in capsys.readouterr().err
    assert main(["bench", "--steps", "01", "--scenarios", "warm"]) == 1
    assert main(["bench", "--steps", "99"]) == 1


# --- engine ---------------------------------------------------------------------------------------


@pytest.mark.engine
def test_measure_the_naive_step_once(docker_client: Any, tmp_path: Path) -> None:
    """The whole protocol on 01-naive, one run per scenario; every run verified and recorded."""
    results = tmp_path / "results.jsonl"
    lines: list[str] = []
    m = measure.measure_step("01", repeats=1, results_path=results, log=lines.append, display="none")
    assert m.step == "01-naive" and m.target is None and m.repeats == 1
    assert list(m.scenarios) == list(measure.protocol("01-naive"))
    assert m.image.size_bytes > 0 and m.image.compressed_bytes and m.image.compressed_bytes < m.image.size_bytes
    assert m.base.startswith(config.FULL_BASE) and m.base.endswith(("(stand-in)", "(official)"))
    assert m.image.ref == "annapurna-lab/01-naive:measure" and docker_client.images.get(m.image.ref).id == m.image.id
    cold, code, dep = (m.scenarios[s].runs[0] for s in measure.protocol("01-naive"))
    assert cold.cached_steps == 0 and cold.ran_steps == 3
    assert code.build is not None and code.build.step_matching("COPY . .").status == "done"
    assert code.build.step_matching("pip install poetry").status == "cached"
    assert dep.build is not None and dep.build.step_matching("poetry install").status == "done"
    assert all(verify(r) == [] for r in (cold, code, dep))
    assert sum("warm-up" in line for line in lines) == 2, "one warm-up before each change scenario"
    assert "inflection" in (config.SCRATCH_DIR / "measure-01-naive" / "pyproject.toml").read_text()
    back = measured("01", results)
    assert back is not None and back.measurement == m.measurement
    assert back.row()["cold_median_s"] == pytest.approx(cold.wall_s, abs=1e-3)
    assert {r.scenario for r in load(path=results)} == {"image", "done", *measure.protocol("01-naive")}


@pytest.mark.parametrize("bad", [0, -1, "x", True, 2.5])
def test_an_invalid_repetition_count_is_refused_before_building(bad: Any) -> None:
    with pytest.raises(InputError, match=f"repeats={bad!r}"):
        measure.measure_step("01", repeats=bad)


def test_an_unknown_step_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown step '99-nope': known steps are 01-naive"):
        measure.measure_step("99-nope")


def test_a_missing_dockerfile_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step's Dockerfile deleted from the checkout: the error names the step and what is there."""
    import shutil

    folder = tmp_path / "dockerfiles"
    shutil.copytree(config.DOCKERFILES_DIR, folder)
    (folder / "05-multi-stage.Dockerfile").unlink()
    monkeypatch.setattr(config, "DOCKERFILES_DIR", folder)
    with pytest.raises(InputError) as info:
        measure.measure_step("05")
    assert "unknown step '05'" in str(info.value) and "05-multi-stage" not in str(info.value)


@pytest.mark.engine
def test_a_scratch_copy_that_fails_to_build_is_named(docker_client: Any) -> None:
    """A learner breaks pyproject.toml in their copy: the BuildError names the copy and the failing step."""
    from basecamp.errors import BuildError
    from basecamp.scratch import scratch_copy
    from basecamp.steps import build_step

    app = scratch_copy("broken-pyproject-test")
    (app.path / "pyproject.toml").write_text("[project\nname = broken\n")
    with pytest.raises(BuildError) as info:
        build_step("02", app, "broken-test", display="none")
    err = info.value
    assert str(app.path) in str(err), "the message names the scratch copy that was built"
    assert err.failed_step and "poetry install" in err.failed_step
    assert "pyproject.toml" in str(err)  # Poetry's own complaint, in the log tail
