import json
import multiprocessing
from pathlib import Path

import pytest
from basecamp import config, results
from basecamp.errors import InputError
from basecamp.results import Record, load, record


def test_records_round_trip_and_filter_by_step() -> None:
    record(Record(step="01-naive", scenario="cold", wall_s=12.5, size_bytes=10))
    record(Record(step="02-warming-up", scenario="cold", wall_s=3.0))
    assert [r.step for r in load()] == ["01-naive", "02-warming-up"]
    (only,) = load("01-naive")
    assert only.wall_s == 12.5 and only.size_bytes == 10 and only.recorded_at


def test_broken_lines_and_unknown_keys_are_tolerated() -> None:
    path = config.RESULTS_FILE
    record(Record(step="01-naive", scenario="cold"))
    with path.open("a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({"step": "01-naive", "scenario": "x", "from_the_future": 1}) + "\n")
    assert [r.scenario for r in load()] == ["cold", "x"]


def _append_many(path: str, worker: int) -> None:
    for i in range(200):
        record(Record(step=f"w{worker}", scenario=str(i), builder="x" * 2000), Path(path))


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    procs = [multiprocessing.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 800
    assert all(json.loads(line)["builder"] == "x" * 2000 for line in lines)


def test_a_truncated_last_line_is_skipped_and_never_swallows_the_next(tmp_path: Path) -> None:
    """A writer killed mid-write (interrupt, crash) leaves half a line; readers and the next writer cope."""
    path = tmp_path / "results.jsonl"
    record(Record(step="01-naive", scenario="cold"), path)
    with path.open("a") as fh:
        fh.write('{"step": "01-naive", "scen')  # no newline: the writer died here
    assert [r.scenario for r in load(path=path)] == ["cold"]
    record(Record(step="01-naive", scenario="code-change"), path)
    assert [r.scenario for r in load(path=path)] == ["cold", "code-change"]
    assert path.read_text().endswith("\n")


@pytest.mark.parametrize(("scenario", "kind"), [
    ("cold", "run"), ("version-bump", "run"), ("image", "image"), ("done", "done"), ("smoke", "smoke"),
    ("forensics", "forensics"), ("context: repo root", "context"), ("notebook-edit with .dockerignore", "context"),
    ("ci-plain", "ci"), ("stop: 06-cache-mounts, shell form", "running"), ("reproducible: 09-hardened-runtime", "running"),
])
def test_a_record_says_what_kind_it_is(scenario: str, kind: str) -> None:
    """Written without a kind (older files, writers that leave it), the kind comes from the scenario."""
    assert Record(step="s", scenario=scenario).kind == kind
    assert results.kind_of(scenario) == kind


def test_the_kind_is_written_and_read_back_and_an_unknown_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    record(Record(step="s", scenario="cold", kind="smoke"), path)
    assert json.loads(path.read_text())["kind"] == "smoke"
    with path.open("a") as fh:  # a line without a kind (an older file), and one with a kind from the future
        fh.write(json.dumps({"step": "s", "scenario": "image"}) + "\n")
        fh.write(json.dumps({"step": "s", "scenario": "done", "kind": "someday"}) + "\n")
    assert [(r.scenario, r.kind) for r in load(path=path)] == [("cold", "smoke"), ("image", "image"), ("done", "done")]
    with pytest.raises(InputError, match="record kind 'nope'"):
        Record(step="s", scenario="cold", kind="nope")
