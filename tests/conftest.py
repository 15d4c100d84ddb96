"""Shared fixtures. Tests marked `engine` need a Docker engine and FAIL (never skip) without one."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _lab_home(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests write results and scratch copies into a temporary lab folder, not .lab/."""
    if request.node.get_closest_marker("engine"):
        return
    from basecamp import config

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
