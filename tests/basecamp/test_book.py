"""The report (basecamp/book.py) on tiny synthetic notebooks: no engine, a real kernel, the real command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from basecamp import book, config
from basecamp.errors import InputError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _write(path: Path, *cells: nbformat.NotebookNode) -> Path:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, path)
    return path


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """01 draws a plotly chart (the notebooks' renderer), 02 fails in its third cell, 03 would pass."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write(folder / "01_chart.ipynb", new_markdown_cell("# a chart"), new_code_cell(
        "import plotly.graph_objects as go\nimport plotly.io as pio\npio.renderers.default = 'plotly_mimetype'\n"
        "go.Figure(go.Bar(x=['a', 'b'], y=[1, 2]))"))
    _write(folder / "02_broken.ipynb", new_code_cell("x = 1"), new_markdown_cell("prose"),
           new_code_cell("# the claim\nassert x == 2, 'x is not two'"), new_code_cell("print('never runs')"))
    _write(folder / "03_after.ipynb", new_code_cell("print('still runs')"))
    (folder / "notes.ipynb").write_text("not part of the series")
    return folder


def _run_report(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANNAPURNA_HOME": str(out.parent / "lab-home"),
           "PYTHONPATH": os.pathsep.join([str(config.NOTEBOOKS_DIR), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "basecamp", "report", "--notebooks-dir", str(folder), "--out", str(out), *extra],
        check=False, capture_output=True, text=True, env=env, timeout=300, cwd=config.REPO_ROOT,
    )


def test_discover_finds_the_series_in_order_and_picks_by_prefix(series: Path) -> None:
    assert [p.name for p in book.discover(notebooks_dir=series)] == ["01_chart.ipynb", "02_broken.ipynb", "03_after.ipynb"]
    assert [p.stem for p in book.discover(["03", "01_chart.ipynb"], series)] == ["01_chart", "03_after"]
    with pytest.raises(InputError, match="no notebook '09'.*01_chart, 02_broken, 03_after"):
        book.discover(["09"], series)


def test_discover_on_the_real_series_starts_with_setup_and_ends_with_the_summary() -> None:
    names = [p.stem for p in book.discover()]
    assert names[0] == "00_setup" and names[-1] == "15_summary" and "01_naive" in names


def test_a_failing_notebook_fails_the_report_and_is_named_with_its_cell(series: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    before = (series / "02_broken.ipynb").read_text()
    proc = _run_report(series, out)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED 02_broken.ipynb at cell 3 (In [2]) `assert x == 2, 'x is not two'`: AssertionError: x is not two" in proc.stderr
    # the notebooks after a failure still run, every page is written, the repo's notebook untouched
    for name in ("01_chart", "02_broken", "03_after"):
        assert (out / f"{name}.html").is_file()
    assert (series / "02_broken.ipynb").read_text() == before
    data = json.loads((out / "report.json").read_text())
    assert [(r["name"], r["ok"]) for r in data["runs"]] == [("01_chart", True), ("02_broken", False), ("03_after", True)]
    assert data["runs"][1]["failure"]["cell"] == 3
    index = (out / "index.html").read_text()
    assert "FAILED" in index and "x is not two" in index and 'href="02_broken.html"' in index
    assert "still runs" in (out / "ipynb" / "03_after.ipynb").read_text()


def test_a_passing_report_exits_zero_with_plotly_once_and_no_cdn(series: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    proc = _run_report(series, out, "--notebooks", "01")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.glob("*.js")) == ["plotly.min.js"]
    assert "plotly.js v" in (out / "plotly.min.js").read_text(encoding="utf-8")[:200]
    pages = sorted(out.glob("*.html"))
    assert [p.name for p in pages] == ["01_chart.html", "index.html"]
    for page in pages:
        text = page.read_text()
        assert "cdn.plot.ly" not in text and "cdn.jsdelivr" not in text and "unpkg.com" not in text, page
        assert re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", text) == ["plotly.min.js"], page
    chart_page = (out / "01_chart.html").read_text()
    assert 'class="plotly-graph-div"' in chart_page and "Plotly.newPlot" in chart_page
    assert book.PLOTLY_MIME not in chart_page
    assert "No step has been measured yet." in (out / "index.html").read_text()


def test_widget_outputs_become_what_their_output_widgets_captured() -> None:
    chart = {"data": [{"type": "bar", "x": [1], "y": [2]}], "layout": {}}
    state = {
        "box": {"state": {"children": ["IPY_MODEL_dropdown", "IPY_MODEL_out"]}},
        "dropdown": {"state": {"value": "size"}},
        "out": {"state": {"outputs": [{"output_type": "display_data", "metadata": {}, "data": {book.PLOTLY_MIME: chart}}]}},
    }
    nb = new_notebook(cells=[new_code_cell("w", outputs=[nbformat.v4.new_output(
        "execute_result", data={book.WIDGET_VIEW_MIME: {"model_id": "box"}, "text/plain": "VBox()"}, execution_count=1)])])
    nb.metadata["widgets"] = {book.WIDGET_STATE_MIME: {"state": state}}
    static = book.make_static(nb)
    outputs = static.cells[0].outputs
    assert "Interactive controls run in JupyterLab" in outputs[0]["data"]["text/html"]
    assert "Plotly.newPlot" in outputs[1]["data"]["text/html"]
    assert "widgets" not in static.metadata
