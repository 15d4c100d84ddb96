"""measure: the protocol's settings and arguments, targets and bases (no engine), and a real run (engine).

Statistics and rows: test_runs; verification: test_verify; tables and files: test_tables; reading back:
test_readback; the benchmark: test_bench.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from basecamp import config, measure
from basecamp.errors import InputError
from basecamp.readback import measured
from basecamp.results import load
from basecamp.verify import verify

# --- settings and arguments ----------------------------------------------------------------------


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
    assert back.row().cells("cold").median_s == pytest.approx(cold.wall_s, abs=1e-3)
    assert {r.scenario for r in load(path=results)} == {"image", "done", *measure.protocol("01-naive")}
    assert [r.kind for r in load(path=results)] == ["image", *["run"] * len(measure.protocol("01-naive")), "done"]


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
