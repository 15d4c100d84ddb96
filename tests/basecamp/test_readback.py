"""readback: measurements read back from the results file, by record kind; older files too (no engine)."""

from __future__ import annotations

import json

from basecamp import config, measure
from basecamp.readback import latest_rows, measured
from basecamp.results import Record, load, record


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
    assert [r.step for r in rows] == ["01-naive", "04-deps-before-code"]
    assert rows[1].cells("cold").median_s == 8.0 and rows[1]["cold_median_s"] == 8.0
    assert [r.step for r in latest_rows(["04-deps-before-code"])] == ["04-deps-before-code"]
    assert len(load()) == 12


def test_records_are_selected_by_their_kind_not_their_scenario() -> None:
    """A run whose scenario is spelled like another kind's is still a run, and the other way round."""
    common = {"step": "01-naive", "builder": "fake", "base": "b (stand-in)", "measurement": "k1"}
    record(Record(scenario="image", kind="image", size_bytes=100, image_id="sha256:img", **common))
    record(Record(scenario="cold", kind="run", wall_s=5.0, run=1, **common))
    record(Record(scenario="cold", kind="smoke", ok=False, wall_s=99.0, note="a smoke record, whatever its scenario",
                  **common))
    record(Record(scenario="done", kind="done", **common))
    m = measured("01-naive", scenarios=["cold"])
    assert m is not None and [r.wall_s for r in m.scenarios["cold"].runs] == [5.0]
    assert m.smoke_ok is False, "the smoke record is found by its kind"
    record(Record(scenario="cold", kind="run", wall_s=6.0, run=1, **{**common, "measurement": "k2"}))
    record(Record(scenario="done", kind="forensics", **{**common, "measurement": "k2"}))  # no "done" kind: unfinished
    assert measured("01-naive", scenarios=["cold"]).measurement == "k1"  # type: ignore[union-attr]


def test_a_results_file_written_before_kinds_still_reads() -> None:
    """Lines without "kind" (older files): the kind comes from the scenario, and the measurement reads back."""
    path = config.RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    common = {"step": "04-deps-before-code", "measurement": "old", "base": "python:3.11-slim-bookworm (stand-in)",
              "builder": "fake", "image_id": "sha256:x"}
    lines = [{"scenario": "image", "size_bytes": 200, "compressed_bytes": 70},
             *({"scenario": s, "wall_s": 2.0, "run": 1, "cached_steps": 1, "ran_steps": 2} for s in measure.SCENARIOS),
             {"scenario": "smoke", "ok": True}, {"scenario": "done"}]
    path.write_text("".join(json.dumps({**common, **line}) + "\n" for line in lines))
    assert [r.kind for r in load()] == ["image", "run", "run", "run", "run", "smoke", "done"]
    (row,) = latest_rows()
    assert row.size_bytes == 200 and row.smoke == "ok" and row.cells("version-bump").runs == 1
