"""`./lab test --isolated`: every notebook alone, from a just-cleaned lab, the way a learner who jumps in runs it.

    ./lab test --isolated [NOTEBOOK ...] [--once]      # from the repository root, engine needed

For each notebook (all of them by default, in the series' order):

1. state (a): the lab's containers, images and build cache removed (`basecamp.cleanup`, stand-in bases
   kept) and an empty results file (the old one is moved aside, never deleted);
2. `pytest --nbval` on that notebook alone, in a new kernel ("Restart Kernel and Run All");
3. for a step notebook (one that measures a step of its own), a second run right after the first,
   state (c), unless `--once`.

The whole run holds the engine lock (`basecamp.enginelock`), so no other notebook measures beside it;
the kernels inherit the lock and do not wait for it. It prints one line per run and a table at the end,
writes the table as JSON to `.lab/results/isolated-<time>.json`, and exits 1 when any run failed.
State (b), each notebook after the whole series, is what the default `./lab test` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from basecamp import config, enginelock
from basecamp.cleanup import fresh_start

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"

#: Notebooks that build and measure a step of their own: run twice in a row (state c).
STEP_NOTEBOOKS = frozenset({
    "01_naive.ipynb", "02_warming_up.ipynb", "03_poetry_cache.ipynb", "04_deps_before_code.ipynb",
    "05_multi_stage.ipynb", "06_cache_mounts.ipynb", "08_uv.ipynb", "09_hardened_runtime.ipynb",
    "10_version_bump.ipynb",
})


@dataclass(frozen=True)
class Run:
    """One notebook run: which, from which state, how it ended and how long it took."""

    notebook: str
    state: str
    passed: bool
    seconds: float
    prepare_seconds: float
    summary: str


def _clean_state(notebook: str) -> str:
    """State (a): the lab's Docker objects removed and the results file emptied (moved aside). One line."""
    return fresh_start(f"isolated-{notebook.split('_')[0]}")


def _pytest(notebook: str) -> tuple[bool, str]:
    """nbval on one notebook, as `./lab test` runs it; (passed, pytest's last line)."""
    cmd = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "--nbval-sanitize-with",
           "notebooks/sanitize.cfg", "-p", "no:cacheprovider", "-q", f"notebooks/{notebook}"]
    proc = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, env={**os.environ,
                          "ANNAPURNA_PROGRESS": os.environ.get("ANNAPURNA_PROGRESS", "plain"),
                          # alone means alone: no measurement of an earlier notebook is reused
                          "ANNAPURNA_RUN_ID": f"isolated-{uuid.uuid4().hex}"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode:
        log = config.LAB_HOME / "results" / f"isolated-{notebook.removesuffix('.ipynb')}-{int(time.time())}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(proc.stdout + proc.stderr)
        return False, f"{lines[-1] if lines else 'no output'} (log: {log.relative_to(REPO) if log.is_relative_to(REPO) else log})"
    return True, lines[-1] if lines else ""


def run(notebooks: list[str], *, twice: bool = True, say=print) -> list[Run]:
    """Each notebook alone from state (a), step notebooks again from state (c); the runs in order."""
    runs: list[Run] = []
    for notebook in notebooks:
        t0 = time.perf_counter()
        prepared = _clean_state(notebook)
        prep = time.perf_counter() - t0
        say(f"{notebook}: alone after a cleanup ({prepared}), prepared in {prep:.1f} s")
        states = ["a", "c"] if twice and notebook in STEP_NOTEBOOKS else ["a"]
        for state in states:
            t1 = time.perf_counter()
            passed, summary = _pytest(notebook)
            runs.append(Run(notebook=notebook, state=state, passed=passed, seconds=time.perf_counter() - t1,
                            prepare_seconds=prep if state == "a" else 0.0, summary=summary))
            say(f"  {'passed' if passed else 'FAILED'} from state ({state}) in {runs[-1].seconds:.0f} s: {summary}")
    return runs


def table(runs: list[Run]) -> str:
    """A markdown table of the runs."""
    rows = ["| Notebook | Alone after `./lab clean` (a) | Right after itself (c) |", "| --- | --- | --- |"]
    for notebook in dict.fromkeys(r.notebook for r in runs):
        cells = {r.state: f"{'passed' if r.passed else 'FAILED'}, {r.seconds:.0f} s" for r in runs if r.notebook == notebook}
        rows.append(f"| {notebook} | {cells.get('a', '—')} | {cells.get('c', '—')} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./lab test --isolated", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook file names (default: every notebook)")
    parser.add_argument("--once", action="store_true", help="run step notebooks once, not twice")
    args = parser.parse_args(argv)
    every = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    unknown = [n for n in args.notebooks if n not in every]
    if unknown:
        parser.error(f"no such notebook: {', '.join(unknown)} (choose from {', '.join(every)})")
    chosen = args.notebooks or every
    t0 = time.perf_counter()
    with enginelock.exclusive(enginelock.describe("./lab test --isolated")):
        runs = run(chosen, twice=not args.once)
    print()
    print(table(runs))
    total = time.perf_counter() - t0
    failed = [r for r in runs if not r.passed]
    print(f"\n{len(runs) - len(failed)} of {len(runs)} runs passed in {total / 60:.1f} min")
    out = config.LAB_HOME / "results" / f"isolated-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"total_seconds": total, "runs": [asdict(r) for r in runs]}, indent=1))
    print(f"written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
