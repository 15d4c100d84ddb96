"""Shared fixtures. Tests marked `engine` need a Docker engine and FAIL (never skip) without one."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

#: The notebook the whole-series run executes first, alone, from a just-cleaned lab (notebooks/conftest.py):
#: the step notebook reported failing when a learner ran it alone after `./lab clean` (issue 17).
ALONE_FIRST = "06_cache_mounts.ipynb"


def pytest_configure(config: pytest.Config) -> None:
    # One id for this run, inherited by every notebook's kernel: a notebook may reuse a measurement an earlier
    # notebook of this run made from exactly the same inputs (basecamp.readback.measure_or_reuse) and says so.
    os.environ.setdefault("ANNAPURNA_RUN_ID", f"pytest-{uuid.uuid4().hex[:12]}")
    # Every build of this run, in this process, a notebook's kernel or a subprocess, appends a line here
    # (basecamp.build): the summary then says how much of each phase was `docker build` running (issue 15).
    if not os.environ.get("ANNAPURNA_BUILD_TIMES"):
        fd, path = tempfile.mkstemp(prefix="annapurna-build-times-", suffix=".jsonl")
        os.close(fd)
        os.environ["ANNAPURNA_BUILD_TIMES"] = path
        config.annapurna_build_times_made = path  # type: ignore[attr-defined]  # removed after the summary
    config.annapurna_artifacts = []  # type: ignore[attr-defined]  # lines for the summary: tests/browser, test_cleanup
    config.annapurna_alone_first = ALONE_FIRST  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    made = getattr(config, "annapurna_build_times_made", None)
    if made:
        Path(made).unlink(missing_ok=True)
        os.environ.pop("ANNAPURNA_BUILD_TIMES", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`run_first` tests, then the rest, then the notebooks (nbval; ALONE_FIRST before the others), then browser
    tests (they show the series' results), then `run_last` tests (a cleanup after the whole run). The sort keeps
    the order within each."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("run_first"):
            return 0
        if item.get_closest_marker("run_last"):
            return 5
        if item.get_closest_marker("browser"):
            return 4
        if item.path.suffix == ".ipynb":  # notebooks/conftest.py: one runs first, alone, from a cleaned lab
            return 2 if item.path.name == ALONE_FIRST else 3
        return 1

    for item in items:  # a notebook builds: `./lab test -m "not engine"` is then the loop without an engine
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.engine)
    items.sort(key=rank)
    for item in items:  # the JUnit XML then tells engine tests apart (tests/phases.py)
        if item.get_closest_marker("engine"):
            item.user_properties.append(("marker", "engine"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = getattr(config, "annapurna_artifacts", [])
    if lines:
        terminalreporter.section("artifacts and timings: browser tests, the cleanup after the run")
        for line in lines:
            terminalreporter.write_line(line)
    # here: a run that needs no summary imports nothing more
    from tests.phases import builds_by_phase, from_reports, read_builds, table

    reports = [r for reports in terminalreporter.stats.values() for r in reports]
    found = from_reports(reports)
    if found:  # the README's time budget lists these phases (issue 15)
        builds = read_builds(Path(os.environ["ANNAPURNA_BUILD_TIMES"]) if os.environ.get("ANNAPURNA_BUILD_TIMES") else None)
        terminalreporter.section("where the time went (seconds per phase, largest first)")
        for line in table(found, builds_by_phase(reports, builds)).splitlines():
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _lab_home(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests write results and scratch copies into a temporary lab folder, not .lab/."""
    if request.node.get_closest_marker("engine"):
        return
    from basecamp import config

    # fake engines and CLIs only: never wait for a real build's engine lock (tests/basecamp/test_enginelock.py tests it)
    monkeypatch.setenv("ANNAPURNA_ENGINE_LOCK", "unit test")
    monkeypatch.delenv("ANNAPURNA_BUILD_TIMES", raising=False)  # fake builds are not the run's builds
    home = tmp_path_factory.mktemp("lab-home")
    monkeypatch.setattr(config, "LAB_HOME", home)
    monkeypatch.setattr(config, "SCRATCH_DIR", home / "scratch")
    monkeypatch.setattr(config, "RESULTS_FILE", home / "results" / "results.jsonl")


@pytest.fixture
def docker_client():
    """The engine's client; a missing engine fails the test with the fix in its message."""
    from basecamp import engine
    from basecamp.errors import EngineError

    try:
        return engine.client()
    except EngineError as exc:
        pytest.fail(f"this test needs a Docker engine: {exc}")
