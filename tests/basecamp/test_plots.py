"""Charts: the interactive plotly JSON always, a static PNG beside it when a browser can draw one."""

from __future__ import annotations

import base64
from typing import Any, ClassVar

import plotly.graph_objects as go
import pytest
from basecamp import plots

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _figure() -> go.Figure:
    return go.Figure(go.Bar(x=["01-naive", "06-cache-mounts"], y=[1100, 190]), layout={"height": 300, "title": "t"})


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "static_problem", None)
    monkeypatch.setattr(plots, "_browser", None)
    monkeypatch.delenv(plots.STATIC_ENV, raising=False)


def test_the_notebooks_renderer_keeps_the_interactive_chart_and_adds_the_static_image() -> None:
    assert plots.RENDERER.split("+") == ["plotly_mimetype", "annapurna_static"]
    assert isinstance(plots.pio.renderers["annapurna_static"], plots.StaticImageRenderer)


def test_without_a_browser_the_chart_stays_interactive_and_nothing_fails(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    bundle = _figure()._repr_mimebundle_()
    assert PLOTLY_MIME in bundle and "image/png" not in bundle
    assert plots.static_problem and "nonexistent" in plots.static_problem
    monkeypatch.delenv("BROWSER_PATH")
    calls: list[Any] = []
    monkeypatch.setattr(plots, "_ChartBrowser", lambda *a, **k: calls.append(a))
    assert plots.static_png(_figure()) is None and calls == []  # one failure: no browser start per chart


def test_a_browser_that_dies_on_start_leaves_the_chart_interactive(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER_PATH", "/bin/false")
    bundle = _figure()._repr_mimebundle_()
    assert list(bundle) == [PLOTLY_MIME]


def test_static_images_can_be_switched_off(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plots.STATIC_ENV, "0")
    monkeypatch.setattr(plots, "_ChartBrowser", lambda *a, **k: pytest.fail("no browser when switched off"))
    assert list(_figure()._repr_mimebundle_()) == [PLOTLY_MIME]


class FakeKaleido:
    """Stands for kaleido.Kaleido: records how it was made and what it drew."""

    made: ClassVar[list[dict[str, Any]]] = []
    drawn: ClassVar[list[tuple[dict[str, Any], dict[str, Any]]]] = []

    def __init__(self, **kwargs: Any) -> None:
        FakeKaleido.made.append(kwargs)

    async def open(self) -> None:
        pass

    async def calc_fig(self, fig: dict[str, Any], opts: dict[str, Any]) -> bytes:
        FakeKaleido.drawn.append((fig, opts))
        return b"\x89PNG fake"

    async def close(self) -> None:
        pass


@pytest.fixture
def fake_kaleido(fresh: None, monkeypatch: pytest.MonkeyPatch) -> type[FakeKaleido]:
    FakeKaleido.made, FakeKaleido.drawn = [], []
    monkeypatch.setattr("kaleido.Kaleido", FakeKaleido)
    return FakeKaleido


def test_the_export_never_asks_for_mathjax_from_a_cdn(fake_kaleido: type[FakeKaleido]) -> None:
    bundle = _figure()._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]) == b"\x89PNG fake"
    assert fake_kaleido.made[0]["mathjax"] is False
    assert fake_kaleido.drawn[0][1] == {"format": "png", "width": plots.STATIC_WIDTH, "height": 300, "scale": 1}


def test_one_browser_draws_every_chart_of_a_process(fake_kaleido: type[FakeKaleido]) -> None:
    """kaleido's one-shot call starts a browser per chart (about 6 s each here); the lab keeps one open."""
    for _ in range(3):
        assert plots.static_png(_figure()) == b"\x89PNG fake"
    assert len(fake_kaleido.made) == 1 and len(fake_kaleido.drawn) == 3


@pytest.mark.browser
def test_a_real_browser_draws_the_same_png_twice(fresh: None) -> None:
    """The stored image is deterministic on one machine (the chart cells ignore their output all the same)."""
    from tests.browser.conftest import chromium_path

    chromium_path()  # fails with the fix when there is none
    first, second = plots.static_png(_figure()), plots.static_png(_figure())
    assert first is not None, plots.static_problem
    assert first.startswith(b"\x89PNG") and first == second


# --- the steps side by side, from their rows (basecamp.runs.MeasuredRow) --------------------------


def test_compare_draws_each_metric_from_the_rows() -> None:
    """Sizes in MB with the row's own size text; times as the median with min/max bars; the menu switches."""
    from test_runs import measurement  # tests/basecamp is on sys.path (pytest imports test files by name)

    rows = [measurement("01-naive", cold=[10.0, 12.0, 10.5]).row(),
            measurement("06-cache-mounts", cold=[4.0], code_change=[1.0, 2.0]).row()]
    fig = plots.plot_compare(rows, "code-change", title="t")
    by = {trace.name: trace for trace in fig.data}
    size, gzipped = by[plots.METRICS["size"][0]], by[plots.METRICS["gzipped"][0]]
    assert list(size.y) == [876.533902, 876.533902] and list(size.text) == ["877 MB", "877 MB"]
    assert list(gzipped.y) == [322.662377, 322.662377] and list(gzipped.text) == ["323 MB", "323 MB"]
    cold, code = by[plots.METRICS["cold"][0]], by[plots.METRICS["code-change"][0]]
    assert list(cold.y) == [10.5, 4.0] and list(cold.error_y.arrayminus) == [0.5, 0.0] and list(cold.error_y.array) == [1.5, 0.0]
    assert list(code.y) == [None, 1.5] and list(code.error_y.array) == [None, 0.5]
    assert list(code.hovertext) == ["0 runs; cached/ran steps: /", "2 runs; cached/ran steps: 1/2"]
    assert code.visible is True and size.visible is False, "the metric asked for is shown first"
    assert "fake builder" in fig.layout.title.text and "python:3.11-bookworm (stand-in)" in fig.layout.title.text


def test_the_chart_browser_resolves_no_name_and_keeps_no_network_habits(
        fake_kaleido: type[FakeKaleido], tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chromium looks up names and phones home on its own; offline (tests/offline) those were counted packets."""
    import subprocess

    browser = tmp_path / "my-chromium"
    browser.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(browser))
    monkeypatch.setattr(plots.config, "LAB_HOME", tmp_path / "lab")
    assert plots.static_png(_figure()) == b"\x89PNG fake"
    launcher = fake_kaleido.made[0]["path"]
    args = subprocess.run([launcher, "--headless"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert args == [*plots.CHART_BROWSER_FLAGS, "--headless"]
    assert "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost" in args
