"""readback.measure_or_reuse: a measurement reused only in the same run, from the same inputs (no engine),
and measure.inputs_digest over a real scratch copy (engine: base image ids and the engine's id)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest
from basecamp import config, engine, measure, readback, results
from basecamp.measure import inputs_digest
from basecamp.project import resolve
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


def test_a_cold_pair_is_two_cold_runs_of_this_runs_measurement_with_both_images_present(
        fake: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"sha256:m11", "sha256:m12"}
    monkeypatch.setattr(readback, "_present", lambda image_id: image_id in present)
    _measurement("m1", inputs="d" * 64, run_id="run-1")
    pair = readback.cold_pair("01")
    assert pair is not None and (pair.measurement, pair.image_a, pair.image_b) == ("m1", "sha256:m11", "sha256:m12")
    assert "cold runs 1 and 2 of measurement m1" in pair.line("01-naive") and "dddddddddddd" in pair.line("01-naive")
    present.discard("sha256:m12")  # one image gone (a later measurement replaced it): build again
    assert readback.cold_pair("01") is None
    present.add("sha256:m12")
    fake["digest"] = "e" * 64  # other inputs now
    assert readback.cold_pair("01") is None
    fake["digest"] = "d" * 64
    monkeypatch.setenv(results.RUN_ID_ENV, "run-2")  # another run
    assert readback.cold_pair("01") is None


def test_reproducibility_compares_the_pair_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from basecamp import reproducible

    tagged: list[tuple[str, str, str]] = []

    class Image:
        def __init__(self, image_id: str) -> None:
            self.image_id = image_id

        def tag(self, repo: str, label: str) -> None:
            tagged.append((self.image_id, repo, label))

    class Client:
        class images:
            @staticmethod
            def get(image_id: str) -> Image:
                return Image(image_id)

    pair = readback.ColdPair(measurement="m1", image_a="sha256:a", image_b="sha256:b", digest="d" * 64)
    monkeypatch.setattr(reproducible, "cold_pair", lambda step, target: pair)
    monkeypatch.setattr(reproducible.engine, "client", Client)
    monkeypatch.setattr(reproducible, "compare_images", lambda name, a, b, commands=(): (name, a, b))
    monkeypatch.setattr(reproducible, "build_step", lambda *a, **k: pytest.fail("built although a pair exists"))
    lines: list[str] = []
    assert reproducible.reproducibility("01", log=lines.append) == ("01-naive", "sha256:a", "sha256:b")
    assert [t[2] for t in tagged] == ["repro-a", "repro-b"] and tagged[0][1] == "annapurna-lab/01-naive"
    assert "not built again" in lines[0]


class _Engine:
    """Images with tags, as the engine keeps them: a tag names one image; an untagged lab image can be removed."""

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}
        self.ids: set[str] = set()
        self.made = iter(range(1, 1000))
        outer = self

        class Image:
            def __init__(self, image_id: str) -> None:
                self.id = image_id
                self.labels = {config.LAB_LABEL: config.LAB_LABEL_VALUE}
                self.attrs = {"Size": 100}

            @property
            def tags(self) -> list[str]:
                return [t for t, i in outer.tags.items() if i == self.id]

            def tag(self, repo: str, label: str) -> None:
                outer.tags[f"{repo}:{label}"] = self.id

        class Images:
            @staticmethod
            def get(ref: str) -> Image:
                image_id = outer.tags.get(ref, ref)
                if image_id not in outer.ids:
                    raise docker.errors.ImageNotFound(ref)
                return Image(image_id)

            @staticmethod
            def remove(image_id: str) -> None:
                outer.ids.discard(image_id)

        self.images = Images()


def _session(eng: _Engine, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A measurement session of 09 on `eng`: each build makes a new image and tags it, like `docker build -t`."""
    def fake_build(dockerfile: Any, context: Any, tag: str, **_: Any) -> Any:
        image_id = f"sha256:{next(eng.made):064x}"
        eng.ids.add(image_id)
        eng.tags[tag] = image_id
        return SimpleNamespace(image_id=image_id, wall_s=1.0, builder="fake", tracking=None, cached_steps=[],
                               ran_steps=[], command="docker build")

    monkeypatch.setattr(measure, "build", fake_build)
    monkeypatch.setattr(measure.images, "inspect_image", lambda ref, base=None: SimpleNamespace(
        gzip_count=None, size_bytes=100, compressed_bytes=40))
    monkeypatch.setattr(measure, "_install_counts", lambda result: (None, None, None))
    monkeypatch.setattr(measure, "verify", lambda run, packages: [])
    session = object.__new__(measure._Session)
    session.__dict__.update(client=eng, step="09-hardened-runtime", project=resolve(None), dockerfile=Path("x"),
                            app=SimpleNamespace(path=Path(".")), target="runtime", display="none", log=lambda _: None,
                            resolved=SimpleNamespace(model=None), base="b", commands=set(), builds_s=0.0, builds=0,
                            sizing_s=0.0, image=None, image_build=None, image_recorded=False)
    monkeypatch.setattr(session, "say", lambda *a: None, raising=False)
    monkeypatch.setattr(session, "record", lambda *a, **k: None, raising=False)
    return session


def test_a_later_measurement_of_other_scenarios_leaves_both_cold_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notebook 10 measures steps 6 and 8 again (a version bump) before notebook 11 compares their cold runs 1 and
    2 (readback.cold_pair): moving ":measure" and ":measure-cold" must not remove those two images."""
    eng = _Engine()
    first = _session(eng, monkeypatch)
    colds = [first.run("cold", i).image_id for i in (1, 2)]
    later = _session(eng, monkeypatch)
    later.build("warm", no_cache=False)  # the version-bump measurement's warm-up: its image becomes ":measure"
    later.run("version-bump", 1)
    assert set(colds) <= eng.ids, "a cold run's image was removed by a later measurement"
    # and a later cold measurement replaces them: nothing accumulates
    again = _session(eng, monkeypatch)
    new = [again.run("cold", i).image_id for i in (1, 2)]
    assert not set(colds) & eng.ids and set(new) <= eng.ids
