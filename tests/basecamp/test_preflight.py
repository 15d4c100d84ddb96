"""No engine: preflight, the setup checks and the setup notebook say so in one message with the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from basecamp import checks, config
from basecamp.errors import EngineError, LabError
from basecamp.preflight import preflight

NOWHERE = "unix:///nonexistent/annapurna-test/docker.sock"


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)
    return NOWHERE


def test_preflight_without_engine_is_one_message_with_the_fix(no_engine: str) -> None:
    with pytest.raises(EngineError) as info:
        preflight()
    err = info.value
    assert no_engine in str(err) and "Fix: run `./lab prepare`" in str(err)
    assert err.__suppress_context__  # `from None`: no chained SDK traceback
    shown = err._render_traceback_()  # what IPython prints instead of a traceback
    assert shown[0].startswith("EngineError: No Docker engine answers at ") and len(shown) == 2
    assert not any("Traceback" in line or "File " in line for line in shown)


def test_setup_checks_without_engine_fail_with_their_fix(no_engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    found = checks.run_checks()  # never raises
    assert checks.report(found) is False
    out = capsys.readouterr().out
    assert f"[FAIL] Docker engine: none answers at {no_engine}" in out
    assert "fix: run `./lab prepare`" in out
    assert "[FAIL] free disk: needs the Docker engine" in out and "Traceback" not in out
    with pytest.raises(LabError, match="check\\(s\\) failed: Docker engine") as info:
        checks.verdict(found)
    assert len(info.value._render_traceback_()) == 2


def test_verdict_when_all_pass() -> None:
    ok = [checks.Check("a", True, "fine"), checks.Check("b", True, "fine")]
    assert checks.verdict(ok) == "All 2 checks passed: open 01_naive.ipynb"


def test_setup_notebook_without_engine_shows_fail_lines_and_no_traceback_wall(
        no_engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Restart & Run All of 00_setup with no engine: [FAIL] lines, then one LabError message, nothing else."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(config.NOTEBOOKS_DIR), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(config.NOTEBOOKS_DIR / "00_setup.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(config.NOTEBOOKS_DIR)}})
    with pytest.raises(CellExecutionError) as info:  # Run All stops at the verdict
        client.execute()
    assert "LabError" in str(info.value)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    (error,) = errors
    assert error.ename == "LabError" and len(error.traceback) == 2, error.traceback
    assert "check(s) failed: Docker engine" in error.traceback[0]
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert f"[FAIL] Docker engine: none answers at {no_engine}" in text and "fix:" in text


def _first_code_cell(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


@pytest.mark.parametrize("path", sorted(p for p in config.NOTEBOOKS_DIR.glob("*.ipynb") if not p.name.startswith("00_")),
                         ids=lambda p: p.name)
def test_every_notebook_but_setup_starts_with_preflight(path: Path) -> None:
    assert _first_code_cell(path) == "import basecamp as bc\n\nbc.preflight()"


def test_there_are_notebooks_to_check() -> None:
    assert len(list(config.NOTEBOOKS_DIR.glob("*.ipynb"))) >= 8
