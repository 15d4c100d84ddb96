"""`./lab test`'s shorter loops: what `-m "not engine"` and a named path select (collected only, nothing runs).

`./lab test -m "not engine"` must leave out everything that builds, the notebooks included; a path under tests/ or
notebooks/ runs instead of both folders (the `./lab` call prepares the lab first, so that test is marked engine).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from basecamp import config

NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "notebooks/sanitize.cfg"]


def _ids(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=config.REPO_ROOT,
                          env={**os.environ, "ANNAPURNA_PROGRESS": "plain"}, capture_output=True, text=True,
                          timeout=600, check=False)


def test_not_engine_leaves_out_every_notebook_and_every_test_that_needs_an_engine() -> None:
    """What `./lab test -m "not engine"` runs (its pytest arguments without the lab's prepare; over a notebook, the
    folders of tests that need an engine and one engine-free file, so that collecting stays short)."""
    quick = _ids(_run([sys.executable, "-m", "pytest", *NBVAL, "notebooks/05_multi_stage.ipynb", "tests/browser",
                       "tests/offline", "tests/remote", "tests/test_phases.py", "-m", "not engine"]))
    assert quick and all(n.startswith("tests/test_phases.py::") for n in quick), quick[:5]


@pytest.mark.engine
def test_a_path_given_to_lab_test_runs_instead_of_both_folders_and_an_options_value_does_not() -> None:
    one = _ids(_run(["./lab", "test", "notebooks/05_multi_stage.ipynb"]))
    assert one and all(n.startswith("notebooks/05_multi_stage.ipynb::") for n in one), one[:5]
    # what .gitlab-ci.yml runs: everything but notebook 12
    rest = _ids(_run(["./lab", "test", "--deselect", "notebooks/12_ci_cache.ipynb"]))
    assert any(n.startswith("tests/") for n in rest) and any(n.startswith("notebooks/05_multi_stage") for n in rest)
    assert not [n for n in rest if n.startswith("notebooks/12_ci_cache")]
