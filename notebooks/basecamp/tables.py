"""The measured steps as plain-text tables, CSV and JSON, from their rows (basecamp.runs.MeasuredRow).

`format_table` prints two tables and a legend: sizes and the median time of each scenario, then per
scenario the Dockerfile steps cached and ran and the packages downloaded. `write_csv` writes the rows'
columns (`MeasuredRow.as_dict`), `write_json` any JSON-ready dict (the bench's report).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from basecamp.runs import SCENARIOS, MeasuredRow

#: How each scenario is named in the tables' headers.
SCENARIO_TITLES = {"cold": "cold build", "code-change": "code change", "dependency-change": "dependency change",
                   "version-bump": "version bump"}
#: The first table: sizes and the median build time of each scenario.
TABLE_COLUMNS = ("step", "size", "gzipped", *(SCENARIO_TITLES[s] for s in SCENARIOS))
#: The second table's columns under each scenario's title.
DETAIL_COLUMNS = ("cached", "ran", "downloads")
#: Printed under the tables: what every column means.
TABLE_LEGEND = (
    "size: the image uncompressed (as `docker images` shows it); gzipped: `docker save | gzip` of it.\n"
    "times: median of the runs (fastest–slowest); -: scenario not measured.\n"
    "cached / ran: Dockerfile steps BuildKit took from its cache / ran again (a range over the runs).\n"
    "downloads: packages the install fetched, counted in the installer's verbose log (?: this step's log does not say)."
)


def table_cells(row: MeasuredRow) -> list[str]:
    """The cells of TABLE_COLUMNS for one row: step, sizes, each scenario's time ("-": not measured)."""
    return [row.step, row.size, row.gzipped, *(row.cells(s).timing or "-" for s in SCENARIOS)]


def detail_cells(row: MeasuredRow) -> list[str]:
    """The step, then per scenario: steps cached, steps ran, packages downloaded ("-": not measured)."""
    cells = [row.step]
    for scenario in SCENARIOS:
        c = row.cells(scenario)
        cells += [c.cached, c.ran, c.downloads or "?"] if c.runs else ["-", "-", "-"]
    return cells


def aligned(head: Sequence[str], body: Sequence[Sequence[str]], groups: Sequence[tuple[str, int]] = ()) -> list[str]:
    """Lines of a text table: optional group titles over runs of columns, the header, a rule, the rows.

    `groups`: (title, number of columns) from the left; "" leaves columns without a title.
    """
    widths = [max(len(str(line[i])) for line in [head, *body]) for i in range(len(head))]
    if groups:  # a title wider than its columns widens the group's last column
        at = 0
        for title, span in groups:
            room = sum(widths[at:at + span]) + 2 * (span - 1)
            widths[at + span - 1] += max(0, len(title) - room)
            at += span

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = []
    if groups:
        titles, at = [], 0
        for title, span in groups:
            titles.append(title.ljust(sum(widths[at:at + span]) + 2 * (span - 1)))
            at += span
        out.append("  ".join(titles).rstrip())
    return [*out, line(head), line(["-" * w for w in widths]), *(line(b) for b in body)]


def format_table(rows: Sequence[MeasuredRow], legend: bool = True) -> str:
    """Two plain-text tables of rows (`StepMeasurement.row()`): sizes and times, then per scenario the
    Dockerfile steps cached and ran and the packages downloaded; a legend under them says what each column means."""
    first = aligned(TABLE_COLUMNS, [table_cells(r) for r in rows])
    head = ["step", *(DETAIL_COLUMNS * len(SCENARIOS))]
    groups = [("", 1), *((SCENARIO_TITLES[s], len(DETAIL_COLUMNS)) for s in SCENARIOS)]
    second = aligned(head, [detail_cells(r) for r in rows], groups)
    own = [f"{r.step}: {r.label}" + (f", smoke test {r.smoke}" if r.smoke else "")
           for r in rows if r.dockerfile]  # a learner's Dockerfile (basecamp.yours): say which
    return "\n".join([*first, "", *second, *(["", TABLE_LEGEND] if legend else []), *(["", *own] if own else [])])


def write_csv(rows: Sequence[MeasuredRow], path: Path) -> Path:
    """Rows as CSV (columns: the union of the rows' columns, in first-seen order; None as "")."""
    flat = [r.as_dict() for r in rows]
    columns: list[str] = []
    for r in flat:
        columns += [k for k in r if k not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in flat:
            writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return path


def write_json(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path
