"""tables: the measured steps as text tables, CSV and JSON, from their rows (no engine)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from basecamp.tables import format_table, write_csv, write_json
from test_runs import measurement  # tests/basecamp is on sys.path (pytest imports test files by name)


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


def test_the_first_table_puts_each_scenarios_time_under_its_title() -> None:
    row = measurement(cold=[10.0], dependency_change=[4.0, 6.0]).row()
    first = format_table([row], legend=False).splitlines()[:3]
    cells = dict(zip([c.strip() for c in first[0].split("  ") if c.strip()],
                     [c.strip() for c in first[2].split("  ") if c.strip()]))
    assert cells == {"step": "01-naive", "size": "877 MB", "gzipped": "323 MB", "cold build": "10.0 s",
                     "code change": "-", "dependency change": "5.0 s (4.0–6.0)", "version bump": "-"}


def test_a_learners_dockerfile_is_named_under_the_tables() -> None:
    import dataclasses

    own = dataclasses.replace(measurement("yours", cold=[9.0]), dockerfile="/p/Dockerfile", smoke_ok=True).row()
    text = format_table([measurement(cold=[1.0]).row(), own])
    assert text.splitlines()[-1] == "yours: your Dockerfile (Dockerfile), smoke test ok"
    assert "your Dockerfile" not in format_table([measurement(cold=[1.0]).row()])


def test_csv_and_json_round_trip(tmp_path: Path) -> None:
    m = measurement(cold=[10.0, 12.0], code_change=[2.0, 3.0], dependency_change=[4.0, 5.0])
    rows = [m.row(), measurement("04-deps-before-code", cold=[8.0]).row()]
    path = write_csv(rows, tmp_path / "out" / "bench.csv")
    read = list(csv.DictReader(path.open()))
    assert [r["step"] for r in read] == ["01-naive", "04-deps-before-code"]
    assert float(read[0]["cold_median_s"]) == 11.0 and read[1]["code_change_median_s"] == ""
    assert list(read[0]) == list(rows[0].as_dict()), "the CSV's columns are the row's, in order"
    assert read[0]["cold"] == "11.0 s (10.0–12.0)" and read[1]["code_change_runs"] == "0"
    data = json.loads(write_json({"steps": [m.as_dict()]}, tmp_path / "out" / "bench.json").read_text())
    (step,) = data["steps"]
    assert step["image"]["compressed_bytes"] == 322_662_377
    assert [r["wall_s"] for r in step["runs"]["cold"]] == [10.0, 12.0]
    assert {k: step[k] for k in rows[0].as_dict()} == rows[0].as_dict(), "every column of the row, as it is"
