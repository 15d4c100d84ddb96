"""Where the seconds of a `./lab test` went, from its JUnit XML: `python -m tests.phases run.xml`.

`./lab test --junitxml=run.xml` (or `bash .ci/run --junitxml=run.xml`) writes one <testcase> per test and per
notebook cell, with its time. This sums them into the phases the README's time budget lists: the tests that
need no engine, the engine tests of the package, the real projects, the remote engine, the offline bundle,
each notebook, the browser tests and the cleanup after the run. Setup and teardown time is in the test's time.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

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


def phases(xml_path: Path) -> dict[str, tuple[float, int]]:
    """Phase -> (seconds, test cases), in the order the run met them."""
    seconds: dict[str, float] = defaultdict(float)
    cases: dict[str, int] = defaultdict(int)
    for case in ET.parse(xml_path).iter("testcase"):
        engine = any(p.get("name") == "marker" and p.get("value") == "engine" for p in case.iter("property"))
        phase = phase_of(case.get("classname", ""), engine)
        seconds[phase] += float(case.get("time") or 0)
        cases[phase] += 1
    return {p: (seconds[p], cases[p]) for p in seconds}


def table(found: dict[str, tuple[float, int]]) -> str:
    total = sum(s for s, _ in found.values())
    notebooks = sum(s for p, (s, _) in found.items() if p.startswith("notebook "))
    lines = ["| phase | s | cases |", "|---|---:|---:|"]
    for phase, (s, n) in sorted(found.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {phase} | {s:.1f} | {n} |")
    lines.append(f"| all notebooks | {notebooks:.1f} | |")
    lines.append(f"| **all of pytest** | **{total:.1f}** | {sum(n for _, n in found.values())} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xml", type=Path, help="the JUnit XML of a ./lab test run")
    args = parser.parse_args(argv)
    print(table(phases(args.xml)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
