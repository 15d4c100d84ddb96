"""tests/isolated.py (`./lab test --isolated`) without an engine: states, repeats, the table."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from basecamp import config

from tests import isolated

_cleanup_module = importlib.import_module("basecamp.cleanup")  # the facade's `basecamp.cleanup` is the function


class _Report:
    def summary(self) -> str:
        return "cleanup removed: 1 container(s)\nmore"


def test_each_notebook_starts_clean_and_step_notebooks_run_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    results = Path(config.RESULTS_FILE)
    cleaned: list[str] = []
    ran: list[tuple[str, bool]] = []

    def fake_cleanup() -> _Report:
        cleaned.append("x")
        return _Report()

    def fake_pytest(notebook: str) -> tuple[bool, str]:
        # state (a) starts from an empty results file; the run then writes one
        ran.append((notebook, results.exists()))
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text('{"step": "01"}\n')
        return notebook != "14_lint.ipynb", "1 passed"

    monkeypatch.setattr(_cleanup_module, "cleanup", fake_cleanup)
    monkeypatch.setattr(isolated, "_pytest", fake_pytest)
    lines: list[str] = []
    runs = isolated.run(["00_setup.ipynb", "06_cache_mounts.ipynb", "14_lint.ipynb"], say=lines.append)
    assert [(r.notebook, r.state) for r in runs] == [("00_setup.ipynb", "a"), ("06_cache_mounts.ipynb", "a"),
                                                      ("06_cache_mounts.ipynb", "c"), ("14_lint.ipynb", "a")]
    assert len(cleaned) == 3
    # before each notebook's first run the results file is gone (moved aside, kept); the repeat keeps it
    assert ran == [("00_setup.ipynb", False), ("06_cache_mounts.ipynb", False), ("06_cache_mounts.ipynb", True),
                   ("14_lint.ipynb", False)]
    assert len(list(results.parent.glob("results.jsonl.before-isolated-*"))) == 2
    assert [r.passed for r in runs] == [True, True, True, False]
    table = isolated.table(runs)
    assert "| 06_cache_mounts.ipynb | passed, " in table and "| 14_lint.ipynb | FAILED, " in table
    assert table.splitlines()[2].endswith("| — |")  # 00 is no step notebook: no second run
    assert any("FAILED from state (a)" in line for line in lines)


def test_once_runs_every_notebook_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cleanup_module, "cleanup", _Report)
    monkeypatch.setattr(isolated, "_pytest", lambda nb: (True, ""))
    runs = isolated.run(["01_naive.ipynb"], twice=False, say=lambda _: None)
    assert [r.state for r in runs] == ["a"]


def test_every_step_notebook_exists() -> None:
    names = {p.name for p in isolated.NOTEBOOKS.glob("*.ipynb")}
    assert isolated.STEP_NOTEBOOKS <= names
