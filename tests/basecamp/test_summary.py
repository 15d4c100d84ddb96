"""The summary notebook's text tables: each column's meaning readable from its header or the legend."""

from __future__ import annotations

from basecamp import summary
from basecamp.runs import SCENARIOS, MeasuredRow, ScenarioCells
from basecamp.units import fmt_bytes


def _cells(median: float, spread: float) -> ScenarioCells:
    return ScenarioCells(median_s=median, min_s=median - spread, max_s=median + spread, spread_s=2 * spread, runs=2)


def _row(step: str, size: float, cold: float, code: float | None = None) -> MeasuredRow:
    measured = {"cold": _cells(cold, 1), **({"code-change": _cells(code, 0)} if code is not None else {})}
    return MeasuredRow(step=step, label=step, smoke="", dockerfile="", project="annapurna", base="b", builder="x",
                       target="", repeats=2, size_bytes=int(size), size=fmt_bytes(size),
                       compressed_bytes=int(size / 3), gzipped=fmt_bytes(size / 3),
                       scenarios={s: measured.get(s, ScenarioCells()) for s in SCENARIOS})


ROWS = [_row("01-naive", 800e6, 12.0, 4.0), _row("05-multi-stage", 200e6, 11.0), _row("06-cache-mounts", 160e6, 10.0, 0.1)]


def test_ratios_name_what_they_divide() -> None:
    lines = summary.ratios_table(ROWS).splitlines()
    assert "01-naive ÷ step" in lines[0] and "step ÷ 06-cache-mounts" in lines[0]
    assert lines[1].split()[:5] == ["step", "size", "size", "size", "cold"]
    # the group titles stand over their columns: "step ÷ 06" starts where its first column does
    assert lines[0].index("step ÷ 06-cache-mounts") == lines[1].index("size", lines[1].index("size", lines[1].index("size") + 1) + 1)
    naive = next(line for line in lines if line.startswith("01-naive "))
    assert naive.split()[3:7] == ["1.0x", "5.0x", "1.2x", "40.0x"]
    multi = next(line for line in lines if line.startswith("05-multi-stage"))
    assert multi.split()[3:8] == ["4.0x", "1.2x", "1.1x", "—", "—"]
    assert "/x" not in "\n".join(lines) and "x/" not in "\n".join(lines)
    assert any(line.startswith("step ÷ 06-cache-mounts:") for line in lines), "a legend says how to read it"


def test_article_table_has_a_legend() -> None:
    text = summary.article_table(ROWS)
    multi = next(line for line in text.splitlines() if line.startswith("05-multi-stage")).split("  ")
    assert [c.strip() for c in multi if c.strip()][-4:] == ["11.0 s (10.0–12.0)", "—", "—", "—"]
    assert "article: the size the article published" in text and "median of the runs (fastest–slowest)" in text
    assert " · " not in text


def test_beyond_table_cells_say_what_they_hold(monkeypatch) -> None:
    monkeypatch.setattr("basecamp.forensics.latest_forensics",
                        lambda: [{"step": "03b-cache-deleted-later", "wasted_bytes": 3_850_000, "efficiency": 0.9949}])
    text = summary.beyond_table()
    assert "13 forensics 03b-cache-deleted-later" in text
    assert "3.85 MB wasted; 99.49%" in text and " · " not in text
    assert "efficiency (13): 1 − wasted bytes" in text


def test_running_table_reads_notebook_11s_latest_records(tmp_path, monkeypatch) -> None:
    from basecamp import config
    from basecamp.results import Record, record

    monkeypatch.setattr(config, "RESULTS_FILE", tmp_path / "results.jsonl")
    assert summary.running_table() == "nothing measured yet on the running images: run notebook 11"
    for scenario, wall in (("stop: 06-cache-mounts", 0.9), ("stop: 06-cache-mounts", 0.41),
                           ("stop: 06-cache-mounts, shell form", 10.12), ("start: 06-cache-mounts", 0.84),
                           ("start: 06-cache-mounts, read-only", 0.8), ("start: 09-hardened-runtime", 0.81)):
        record(Record(step="11-running", scenario=scenario, wall_s=wall))
    record(Record(step="11-running", scenario="reproducible: 09-hardened-runtime", ok=False))
    record(Record(step="09-hardened-runtime", scenario="stop: 09-hardened-runtime", wall_s=99.0))  # another step's
    record(Record(step="11-running", scenario="stop: 05-multi-stage", kind="run", wall_s=5.0))  # a run, not notebook 11's
    lines = summary.running_table().splitlines()
    assert lines[0].split() == ["step", "stop", "s", "stop", "s,", "shell", "form", "start", "s", "start", "s,", "as",
                                "root", "start", "s,", "read-only", "reproducible"]
    six = next(line for line in lines if line.startswith("06-cache-mounts")).split()
    assert six == ["06-cache-mounts", "0.41", "10.12", "0.84", "—", "0.80", "—"]  # the latest record wins
    nine = next(line for line in lines if line.startswith("09-hardened-runtime")).split()
    assert nine == ["09-hardened-runtime", "—", "—", "0.81", "—", "—", "no"]
    assert not any(line.startswith("05-multi-stage") for line in lines), "selected by kind, not by scenario"
    assert "99.00" not in "\n".join(lines) and any(line.startswith("stop s:") for line in lines)
