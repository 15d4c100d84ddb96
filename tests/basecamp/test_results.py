import json
import multiprocessing
from pathlib import Path

from basecamp import config
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
