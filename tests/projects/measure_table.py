"""Measure the real fixtures for tests/fixtures/projects/README.md's table (needs the engine).

    python -m tests.projects.measure_table [fixture ...]    # from the repository root

For each passing fixture (tests/projects/test_real_projects.py's REAL) and each of steps 01, 05, 06:
one cold build and one code-change rebuild (`measure_step(..., scenarios=["cold", "code-change"],
repeats=1)`), then the project's smoke test; prints one markdown table row per step. Wrap the call
in the engine lock when the engine is shared.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from basecamp import measure
from basecamp.project import use_project
from basecamp.smoke import SmokeResult
from basecamp.units import fmt_bytes

from tests.projects.test_real_projects import FIXTURES, REAL

STEPS = ("01", "05", "06")


def _cell(stats: measure.ScenarioStats) -> str:
    dl = f" ({stats.downloads} downloads)" if stats.downloads not in ("", "?", "0") else ""
    return f"{stats.timing()}{dl}"


def _smoke(smoke: SmokeResult) -> str:
    if smoke.ok:
        return f"OK: `{smoke.path}` HTTP {smoke.status} after {smoke.seconds_to_ready:.1f} s"
    return f"FAILED: {smoke.error}"


def rows(names: list[str]) -> list[str]:
    """One markdown row per (fixture, step): size, cold, code change, smoke test."""
    out: list[str] = []
    for fixture in (f for f in REAL if not names or f.name in names):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / fixture.name
            shutil.copytree(FIXTURES / fixture.name, root)
            project = use_project(root, command=fixture.command)
            for step in STEPS:
                m = measure.measure_step(step, project=project, scenarios=["cold", "code-change"], repeats=1,
                                         display="none")
                smoke = project.smoke_test(m.image.ref)
                row = (f"| {fixture.name} | {m.step} | {fmt_bytes(m.image.size_bytes)} "
                       f"| {_cell(m.scenarios['cold'])} | {_cell(m.scenarios['code-change'])} "
                       f"| {_smoke(smoke)} |")
                print(row, flush=True)
                out.append(row)
    return out


if __name__ == "__main__":
    rows(sys.argv[1:])
