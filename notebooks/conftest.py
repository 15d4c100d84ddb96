"""pytest --nbval on the series: one notebook runs first, alone, from a just-cleaned lab.

Learners do not run the series in order (issue 17). So the whole-series run (`./lab test`) runs
tests/conftest.py's `ALONE_FIRST` before every other notebook, from the state a learner has after
`./lab clean`: the lab's containers, images and build cache removed (`basecamp.cleanup`, stand-in
bases kept) and an empty results file (the old one is kept beside it). It then has to measure what
it compares with by itself, which is where order dependencies show. tests/conftest.py puts it
first; this hook prepares the state before its first cell. A run of one notebook, or a run
without tests/conftest.py (`pytest notebooks/...`), changes nothing.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

_prepared = False


def pytest_configure(config: pytest.Config) -> None:
    # One id for the run (tests/conftest.py sets the same when it is loaded first): notebooks of this run may
    # reuse a measurement made from exactly the same inputs (basecamp.readback.measure_or_reuse), saying so.
    os.environ.setdefault("ANNAPURNA_RUN_ID", f"pytest-{uuid.uuid4().hex[:12]}")


def _series_run(session: pytest.Session) -> bool:
    return sum(1 for item in session.items if item.path.suffix == ".ipynb" and item.name.endswith("Cell 0")) > 1


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _prepared
    alone = getattr(item.config, "annapurna_alone_first", None)
    if _prepared or item.path.name != alone or not _series_run(item.session):
        return
    _prepared = True
    from basecamp.cleanup import fresh_start

    t0 = time.perf_counter()
    gone = fresh_start(f"{alone.split('_')[0]}-alone")
    line = f"{alone} ran first, alone, after a cleanup ({gone}); prepared in {time.perf_counter() - t0:.1f} s"
    artifacts = getattr(item.config, "annapurna_artifacts", None)
    if artifacts is not None:
        artifacts.append(line)
