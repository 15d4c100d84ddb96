"""The report in a real browser, offline: `python -m basecamp report` over 01_naive.

What this covers: the real command (subprocess) executes 01_naive (ANNAPURNA_REPEATS=1, to keep CI
in budget), then chromium opens the index and the 01 page from file:// with every non-file request
aborted: the charts must draw from the local plotly.min.js, and the summary table (every step this
machine has measured, read from the results: the index needs no summary notebook) must be on the index.
15_summary is not reported here (issue 15: it added a third to the test's time and nothing the browser
checks); nbval runs it in the same `./lab test`. The full series is `./lab report`; its failure handling is tested without an
engine in tests/basecamp/test_book.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from basecamp import config

pytestmark = [pytest.mark.engine, pytest.mark.browser]

#: The notebooks the test reports on; $ANNAPURNA_REPORT_NOTEBOOKS (comma-separated) picks others, but 01 must be in.
NOTEBOOKS = [n.strip() for n in os.environ.get("ANNAPURNA_REPORT_NOTEBOOKS", "01").split(",") if n.strip()]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    env = {**os.environ, "ANNAPURNA_REPEATS": "1",
           "PYTHONPATH": os.pathsep.join([str(config.NOTEBOOKS_DIR), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "basecamp", "report", "--out", str(out), "--notebooks", *NOTEBOOKS],
                          check=False, capture_output=True, text=True, env=env, cwd=config.REPO_ROOT, timeout=3600)
    print(proc.stdout[-3000:], proc.stderr[-3000:], f"report took {time.perf_counter() - started:.0f} s", sep="\n")
    assert proc.returncode == 0, f"the report failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out


def _offline_page(offline_page: Callable[[str, int, int], Any]) -> tuple[Any, list[str], list[str]]:
    """A page that may load file:// only; every other request is aborted and remembered."""
    opened = offline_page("file:", 1280, 900)
    errors: list[str] = []
    opened.page.on("pageerror", lambda e: errors.append(str(e)))
    return opened.page, opened.blocked, errors


def test_the_site_has_one_plotly_js_and_no_network_script(site: Path) -> None:
    assert [p.name for p in site.glob("*.js")] == ["plotly.min.js"]
    for page in site.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "cdn.plot.ly" not in text and '<script src="http' not in text, page
    runs = json.loads((site / "report.json").read_text())["runs"]
    assert len(runs) == len(NOTEBOOKS) and runs[0]["name"] == "01_naive", runs
    assert all(r["ok"] for r in runs), runs


def test_index_and_step_page_render_their_charts_offline(site: Path, offline_page: Callable[[str, int, int], Any],
                                                        screenshot: Callable[..., Path]) -> None:
    page, blocked, errors = _offline_page(offline_page)

    page.goto((site / "index.html").as_uri())
    page.wait_for_selector("#summary-chart .js-plotly-plot .main-svg", timeout=30_000)
    rows = page.locator("table#summary tbody tr")
    assert rows.count() >= 1, "the summary table lists the measured steps"
    assert "01-naive" in page.locator("table#summary").inner_text()
    statuses = page.locator("table#notebooks tr.notebook").all_inner_texts()
    assert len(statuses) == len(NOTEBOOKS) and all("passed" in s for s in statuses), statuses
    screenshot(page, "report-index", full_page=True)

    page.click("text=01_naive")
    page.wait_for_url("**/01_naive.html")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    charts = page.locator(".js-plotly-plot")
    assert charts.count() >= 2, "01 draws the layer chart and the rebuild chart"
    assert page.locator(".js-plotly-plot .main-svg .trace").count() > 0, "the charts have drawn bars"
    assert page.get_by_text("Docker engine: ready.").count() >= 1
    screenshot(page, "report-01_naive", full_page=True)

    assert blocked == [], f"the report must work offline, but it requested {blocked}"
    assert errors == [], f"JavaScript errors on the pages: {errors}"
