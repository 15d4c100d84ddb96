"""JupyterLab as the README starts it (`./lab start`), driven in chromium.

The URL `./lab start` prints opens 00_setup.ipynb, with no first-run question (Jupyter news) on top.
Then opens 01_naive.ipynb, runs its first cells (preflight, the Dockerfile, the live build) and waits for
the build's ipywidgets progress bar (basecamp/display.py) to render; then interrupts the kernel,
which cancels the build, and shuts the server down. The time from `./lab start` to a server that
answers is measured and listed at the end of the run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from basecamp import config
from playwright.sync_api import expect

pytestmark = [pytest.mark.engine, pytest.mark.browser]

NOTEBOOK = "01_naive.ipynb"
READY_TIMEOUT_S = 300
#: A cell's prompt before it runs (after, "[*]:" while queued or running, "[n]:" when done).
_NOT_RUN = re.compile(r"\[\s*\]:")


@dataclass
class Lab:
    url: str
    token: str
    ready_s: float
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else ""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """`./lab start` on a free port with a known token, ready; stopped (kernels too) afterwards."""
    port, token = _free_port(), secrets.token_hex(16)
    # autosave off (user settings in a temporary folder): the test must never write the repo's notebook
    settings = tmp_path / "settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text('{"autosave": false}')
    env = {**os.environ, "ANNAPURNA_PROGRESS": "widget", "ANNAPURNA_REPEATS": "1",
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings")}
    log = tmp_path / "jupyterlab.log"
    started = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(
            ["bash", str(config.REPO_ROOT / "lab"), "start", f"--port={port}", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.token={token}", "--no-browser"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=config.REPO_ROOT, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, 0.0, log)
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`./lab start` exited with {proc.returncode}:\n{_log_tail(log)}")
            try:
                server.api("/api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.perf_counter() - started > READY_TIMEOUT_S:
                    pytest.fail(f"JupyterLab did not answer within {READY_TIMEOUT_S} s:\n{_log_tail(log)}")
                time.sleep(0.2)
        server.ready_s = time.perf_counter() - started
        yield server
    finally:
        try:
            for session in server.api("/api/sessions"):
                server.api(f"/api/sessions/{session['id']}", method="DELETE")
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_lab_start_opens_00_setup_and_asks_no_first_run_question(
        lab: Lab, offline_page: Callable[[str, int, int], Any], screenshot: Callable[..., Path]) -> None:
    """The server's start page (what `./lab start` prints, and `/`) is 00_setup.ipynb; no news pop-up."""
    printed = [line for line in lab.log.read_text(errors="replace").splitlines() if f"{lab.url}/" in line]
    assert any("/lab/tree/00_setup.ipynb?token=" in line for line in printed), f"`./lab start` printed: {printed}"
    opened = offline_page(lab.url, 1400, 900)
    page, blocked = opened.page, opened.blocked
    page.goto(f"{lab.url}/?token={lab.token}")
    assert page.url.startswith(f"{lab.url}/lab/tree/00_setup.ipynb"), page.url
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    current = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    expect(current.first).to_have_text("00_setup.ipynb", timeout=30_000)
    expect(panel.locator(".jp-Notebook h1").first).to_contain_text("00 ·")
    # the news question is a toast that appears once the app is restored: give it time to show
    page.wait_for_timeout(5000)
    toasts = page.locator(".jp-Notification-Toast, .Toastify__toast")
    texts = [toasts.nth(i).inner_text() for i in range(toasts.count())]
    assert not any("news" in t.lower() for t in texts), f"a first-run question is showing: {texts}"
    assert page.get_by_text("official Jupyter news").count() == 0
    screenshot(page, "jupyterlab-start-00_setup")
    assert blocked == [], f"JupyterLab requested outside addresses: {blocked}"


def _code_cells_through_build(path: Path) -> list[int]:
    """The indexes of the code cells from the top down to the one that starts the live build."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            found.append(i)
            if "measure_step(" in "".join(cell["source"]):
                return found
    raise AssertionError(f"{path.name} has no cell calling measure_step")


def _wait_for_idle_kernel(lab: Lab, page: Any, timeout_s: float = 120) -> None:
    """Until the notebook's own kernel (the server's one session) is idle, and its panel's indicator says so."""
    indicator = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator").first
    deadline = time.monotonic() + timeout_s
    state = status = None
    while time.monotonic() < deadline:
        sessions = lab.api("/api/sessions")
        ours = [s for s in sessions if s["path"].endswith(NOTEBOOK)]
        state = ours[0]["kernel"]["execution_state"] if ours else None
        status = indicator.get_attribute("data-status") if indicator.count() else None
        if state == "idle" and status == "idle":
            return
        time.sleep(0.3)
    raise AssertionError(f"{NOTEBOOK}'s kernel never became idle: server says {state!r}, the page {status!r}")


def _run_cell(page: Any, cell: Any, prompt: Any, note: Callable[[str], None], attempts: int = 3) -> None:
    """Select the cell by its prompt and press Shift+Enter, as a learner does, until it is queued or runs.

    A key press that lands while JupyterLab is still attaching the notebook (focus elsewhere) is
    lost, and a learner would press again: so does this, up to `attempts` times, and says so.
    A dialog on top (which would take the key) fails the test with its text.
    """
    for attempt in range(1, attempts + 1):
        cell.scroll_into_view_if_needed()
        prompt.click()
        page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if not _NOT_RUN.fullmatch(prompt.inner_text().strip()):
                if attempt > 1:
                    note(f"JupyterLab: a cell ran on key press {attempt} (the earlier ones were lost)")
                return
            time.sleep(0.2)
        dialogs = page.locator(".jp-Dialog")
        assert dialogs.count() == 0, f"a dialog is on top of the notebook: {dialogs.first.inner_text()!r}"
    raise AssertionError(f"the cell did not run after {attempts} clicks and Shift+Enter (prompt still '[ ]:')")


def test_lab_start_opens_01_and_the_build_progress_widget_renders(
        lab: Lab, offline_page: Callable[[str, int, int], Any], screenshot: Callable[..., Path],
        note: Callable[[str], None]) -> None:
    note(f"JupyterLab ready after `./lab start`: {lab.ready_s:.1f} s")
    saved = (config.NOTEBOOKS_DIR / NOTEBOOK).read_bytes()
    opened = offline_page(lab.url, 1400, 1000)  # JupyterLab must work offline too
    page, blocked = opened.page, opened.blocked
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    notebook.locator(".jp-Cell").first.wait_for(timeout=60_000)
    _wait_for_idle_kernel(lab, page)
    # the saved notebook carries its execution counts ("[1]:"...): clear them (not saved: autosave is off),
    # so that a count on a prompt can only come from this kernel
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Edit").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Clear Outputs of All Cells").first.click()
    first = notebook.locator(".jp-Cell").nth(_code_cells_through_build(config.NOTEBOOKS_DIR / NOTEBOOK)[0])
    expect(first.locator(".jp-InputPrompt").first).to_have_text(_NOT_RUN, timeout=10_000)

    # run the code cells from the top down to the live build: click a cell's prompt, Shift+Enter
    cells = notebook.locator(".jp-Cell")
    code = _code_cells_through_build(config.NOTEBOOKS_DIR / NOTEBOOK)
    for n, index in enumerate(code, start=1):
        cell = cells.nth(index)
        prompt = cell.locator(".jp-InputPrompt").first
        try:
            _run_cell(page, cell, prompt, note)
        except AssertionError:
            screenshot(page, "jupyterlab-01_naive-FAILED", full_page=True)
            raise
        if index == code[-1]:
            expect(prompt).to_have_text("[*]:", timeout=30_000)
        else:
            expect(prompt).to_have_text(f"[{n}]:", timeout=120_000)
            assert cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
            assert cell.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']").count() == 0
        if n == 1:
            expect(cell.locator(".jp-OutputArea")).to_contain_text("Docker engine: ready.")

    # the saved notebook has no widget state: a progress bar can only come from this kernel's build
    bar = notebook.locator(".jp-OutputArea .widget-hprogress, .jp-OutputArea .widget-progress").first
    try:
        bar.wait_for(timeout=180_000)
    except Exception:
        screenshot(page, "jupyterlab-01_naive-FAILED", full_page=True)
        raise
    bar.scroll_into_view_if_needed()
    assert notebook.locator(".jp-OutputArea .jupyter-widgets").count() >= 1
    page.wait_for_timeout(3000)  # a few build steps, so the bar and its label have moved
    label = notebook.locator(".jp-OutputArea .widget-label").first.inner_text()
    assert label.strip(), "the progress widget shows the current step"
    screenshot(page, "jupyterlab-01_naive-build-progress")

    # interrupt: the build is cancelled, the widget says so, and the kernel is idle again
    sessions = lab.api("/api/sessions")
    assert len(sessions) == 1 and sessions[0]["path"].endswith(NOTEBOOK), sessions
    lab.api(f"/api/kernels/{sessions[0]['kernel']['id']}/interrupt", method="POST")
    page.get_by_text("INTERRUPTED").first.wait_for(timeout=120_000)
    assert blocked == [], f"JupyterLab requested outside addresses: {blocked}"
    assert (config.NOTEBOOKS_DIR / NOTEBOOK).read_bytes() == saved, f"{NOTEBOOK} was written by JupyterLab"
