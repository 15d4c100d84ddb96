"""Where the seconds of a `./lab test` went: printed at the end of every run (tests/conftest.py), and from a
run's JUnit XML afterwards: `python -m tests.phases run.xml`.

`./lab test --junitxml=run.xml` (or `bash .ci/run --junitxml=run.xml`) writes one <testcase> per test and per
notebook cell, with its time. This sums them into the phases the README's time budget lists: the tests that
need no engine, the engine tests of the package, the real projects, the remote engine, the offline bundle,
each notebook, the browser tests and the cleanup after the run. Setup and teardown time is in the test's time.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: classname prefix -> phase, first match wins; notebooks get one phase each.
PHASES = (
    ("tests.remote.", "remote-engine test"),
    ("tests.offline.", "offline bundle test"),
    ("tests.projects.", "real projects"),
    ("tests.browser.", "browser tests"),
    ("tests.basecamp.test_cleanup", "cleanup tests (incl. the cleanup after the run)"),
    ("tests.", "unit tests (no engine)"),
)


def phase_of(classname: str, engine: bool = False) -> str:
    """A test case's phase; `engine`: it is marked `engine` (tests/conftest.py records the marker)."""
    if classname.startswith("notebooks."):
        return "notebook " + classname.removeprefix("notebooks.").removesuffix(".ipynb")
    phase = next((phase for prefix, phase in PHASES if classname.startswith(prefix)), "other")
    return "engine tests of the lab" if engine and phase == "unit tests (no engine)" else phase


def summed(cases: Iterable[tuple[str, float, bool]]) -> dict[str, tuple[float, int]]:
    """(classname, seconds, marked engine) per test case -> phase -> (seconds, test cases), in the order met."""
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for classname, time_s, engine in cases:
        phase = phase_of(classname, engine)
        seconds[phase] += time_s
        counts[phase] += 1
    return {p: (seconds[p], counts[p]) for p in seconds}


def phases(xml_path: Path) -> dict[str, tuple[float, int]]:
    """Phase -> (seconds, test cases) from a run's JUnit XML."""
    return summed((case.get("classname", ""), float(case.get("time") or 0),
                   any(p.get("name") == "marker" and p.get("value") == "engine" for p in case.iter("property")))
                  for case in ET.parse(xml_path).iter("testcase"))


def classname(nodeid: str) -> str:
    """JUnit's classname for a pytest node id: "tests/basecamp/test_x.py::test_y" -> "tests.basecamp.test_x",
    "notebooks/01_naive.ipynb::Cell 2" -> "notebooks.01_naive.ipynb"."""
    return nodeid.split("::", 1)[0].removesuffix(".py").replace("/", ".")


def from_reports(reports: Iterable[Any]) -> dict[str, tuple[float, int]]:
    """Phase -> (seconds, test cases) from the run's own test reports (setup, call and teardown summed per test,
    as the JUnit XML does): what `./lab test` prints at its end."""
    per_test: dict[str, list[Any]] = {}
    for report in reports:
        if getattr(report, "when", None) in ("setup", "call", "teardown"):
            per_test.setdefault(report.nodeid, []).append(report)
    return summed((classname(nodeid), sum(r.duration for r in rs),
                   ("marker", "engine") in (rs[0].user_properties or []))
                  for nodeid, rs in per_test.items())


def builds_by_phase(reports: Iterable[Any], builds: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Phase -> seconds of `docker build` running during it. `builds`: the lines basecamp.build wrote to
    $ANNAPURNA_BUILD_TIMES (start as epoch seconds, wall_s); each goes to the test whose setup, call or teardown
    was running when the build started (a report's start and stop). A build no test was running at: "outside tests"."""
    spans = sorted((r.start, r.stop, r.nodeid, ("marker", "engine") in (r.user_properties or []))
                   for r in reports if getattr(r, "when", None) in ("setup", "call", "teardown"))
    seconds: dict[str, float] = defaultdict(float)
    for b in builds:
        start = float(b["start"])
        # the latest span that began at or before the build's start and had not ended yet (spans nest only in time)
        hit = next((s for s in reversed(spans) if s[0] <= start <= s[1]), None)
        phase = phase_of(classname(hit[2]), hit[3]) if hit else "outside tests"
        seconds[phase] += float(b["wall_s"])
    return dict(seconds)


def read_builds(path: Path | None) -> list[dict[str, Any]]:
    """The lines basecamp.build appended to $ANNAPURNA_BUILD_TIMES (none: no file, or none named)."""
    if path is None or not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(found: dict[str, tuple[float, int]], builds: dict[str, float] | None = None) -> str:
    """The phases, largest first; with `builds` (builds_by_phase) a column of `docker build` seconds in each."""
    def row(*cells: str) -> str:  # name, seconds, build seconds (only with `builds`), cases; empty cells stay "| |"
        kept = cells if builds is not None else (cells[0], cells[1], cells[3])
        return "|" + "|".join(f" {c} " if c else " " for c in kept) + "|"

    total = sum(s for s, _ in found.values())
    notebooks = sum(s for p, (s, _) in found.items() if p.startswith("notebook "))
    built = builds or {}
    lines = [row("phase", "s", "of it docker build s", "cases"), row("---", "---:", "---:", "---:").replace(" ", "")]  # "|---|---:|...|"
    for phase, (s, n) in sorted(found.items(), key=lambda kv: -kv[1][0]):
        lines.append(row(phase, f"{s:.1f}", f"{built.get(phase, 0.0):.1f}", str(n)))
    if built.get("outside tests"):
        lines.append(row("outside tests", "", f"{built['outside tests']:.1f}", ""))
    nb_built = sum(s for p, s in built.items() if p.startswith("notebook "))
    lines.append(row("all notebooks", f"{notebooks:.1f}", f"{nb_built:.1f}", ""))
    lines.append(row("**all of pytest**", f"**{total:.1f}**", f"**{sum(built.values()):.1f}**",
                     str(sum(n for _, n in found.values()))))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xml", type=Path, help="the JUnit XML of a ./lab test run")
    args = parser.parse_args(argv)
    print(table(phases(args.xml)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
