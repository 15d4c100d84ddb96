"""readback.measure_or_reuse: a measurement reused only in the same run, from the same inputs (no engine),
and measure.inputs_digest over a real scratch copy (engine: base image ids and the engine's id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from basecamp import engine, readback, results
from basecamp.measure import inputs_digest
from basecamp.results import Record, record
from basecamp.scratch import scratch_copy
from basecamp.steps import resolve_step


def _measurement(mid: str, *, inputs: str, run_id: str, colds: int = 2, done: bool = True) -> None:
    common = {"step": "01-naive", "builder": "fake", "base": "python:3.11-bookworm (stand-in)",
              "measurement": mid, "inputs": inputs, "run_id": run_id}
    record(Record(scenario="image", size_bytes=100, compressed_bytes=40, image_id=f"sha256:{mid}", **common))
    for i in range(1, colds + 1):
        record(Record(scenario="cold", wall_s=10.0 + i, cached_steps=0, ran_steps=3, run=i, size_bytes=100,
                      image_id=f"sha256:{mid}{i}", **common))
    record(Record(scenario="code-change", wall_s=2.0, cached_steps=1, ran_steps=2, run=1, downloads=0,
                  image_id="sha256:c", **common))
    if done:
        record(Record(scenario="done", **common))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """inputs_digest answers `state["digest"]`, measure_step is recorded instead of building."""
    state: dict[str, Any] = {"digest": "d" * 64, "measured": []}

    class Images:
        def get(self, ref: str) -> Any:
            import docker.errors
            raise docker.errors.ImageNotFound(ref)

    class Client:
        images = Images()

    monkeypatch.setattr(readback, "inputs_digest", lambda *a: state["digest"])
    monkeypatch.setattr(readback.engine, "client", Client)
    monkeypatch.setattr(readback, "measure_step", lambda step, **kw: state["measured"].append((step, kw)) or "measured")
    monkeypatch.setenv(results.RUN_ID_ENV, "run-1")
    return state


def test_the_same_inputs_in_the_same_run_are_reused_and_it_says_so(fake: dict[str, Any]) -> None:
    _measurement("m-other-run", inputs="d" * 64, run_id="run-0")
    _measurement("m1", inputs="d" * 64, run_id="run-1")
    lines: list[str] = []
    m = readback.measure_or_reuse("01", scenarios=["cold"], repeats=1, log=lines.append)
    assert not fake["measured"] and not isinstance(m, str)
    assert m.measurement == "m1" and list(m.scenarios) == ["cold"] and len(m.scenarios["cold"].runs) == 2
    assert m.image.size_bytes == 100 and m.image.compressed_bytes == 40  # the image is gone: its records stand
    assert "reused from measurement m1" in lines[0] and "ANNAPURNA_RUN_ID=run-1" in lines[0]
    assert "sha256 dddddddddddd" in lines[0] and "not built again" in lines[0]


@pytest.mark.parametrize("case", ["other inputs", "other run", "no run", "too few runs", "not finished", "scenario"])
def test_anything_else_is_measured(fake: dict[str, Any], monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    _measurement("m1", inputs="d" * 64, run_id="run-1", colds=1 if case == "too few runs" else 2,
                 done=case != "not finished")
    if case == "other inputs":
        fake["digest"] = "e" * 64
    elif case == "other run":
        monkeypatch.setenv(results.RUN_ID_ENV, "run-2")
    elif case == "no run":
        monkeypatch.delenv(results.RUN_ID_ENV)
    wanted = ["dependency-change"] if case == "scenario" else ["cold"]
    assert readback.measure_or_reuse("01", scenarios=wanted, repeats=2, log=None) == "measured"
    assert [step for step, _ in fake["measured"]] == ["01"]
    assert fake["measured"][0][1]["scenarios"] == wanted and fake["measured"][0][1]["app"].name == "measure-01-naive"


@pytest.mark.engine
def test_inputs_digest_covers_the_context_the_dockerfile_and_the_target() -> None:
    client = engine.client()
    resolved = resolve_step("06")
    runtime = resolved.for_target("runtime")
    first = inputs_digest(runtime, scratch_copy("reuse-a").path, client)
    copy = scratch_copy("reuse-b")
    assert inputs_digest(runtime, copy.path, client) == first  # two fresh copies: the same inputs
    assert inputs_digest(resolved.for_target("builder"), copy.path, client) != first
    (Path(copy.path) / "annapurna" / "extra.py").write_text("X = 1\n")
    assert inputs_digest(runtime, copy.path, client) != first
